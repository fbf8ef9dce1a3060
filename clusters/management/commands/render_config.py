from django.core.management.base import BaseCommand, CommandError

from clusters import render
from clusters.models import Cluster


class Command(BaseCommand):
    help = (
        "Print the keepalived.conf (or, with --iptables, the iptables-restore input) vipanel "
        "would push to one node."
    )

    def add_arguments(self, parser):
        parser.add_argument("cluster", help="Cluster name")
        parser.add_argument("node", help="Node name within that cluster")
        parser.add_argument(
            "--iptables", action="store_true", help="Print the node's iptables rules instead."
        )

    def handle(self, *args, cluster, node, iptables, **options):
        cluster_obj = Cluster.objects.filter(name=cluster).first()
        if cluster_obj is None:
            names = ", ".join(Cluster.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"No cluster named '{cluster}'. Clusters: {names}.")
        node_obj = cluster_obj.nodes.filter(name=node).first()
        if node_obj is None:
            names = ", ".join(sorted(cluster_obj.nodes.values_list("name", flat=True)))
            raise CommandError(
                f"Cluster '{cluster}' has no node named '{node}'. Nodes: {names or 'none yet'}."
            )
        problems = cluster_obj.readiness_errors()
        if problems:
            lines = "\n".join(f"{field}: {message}" for field, message in problems.items())
            raise CommandError(f"Cluster '{cluster}' is not ready to render:\n{lines}")
        try:
            text = (
                render.render_iptables(node_obj) if iptables else render.render_keepalived(node_obj)
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(text, ending="")
