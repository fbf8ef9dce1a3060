import json

from django.core.management.base import BaseCommand, CommandError

from clusters import sweep
from clusters.models import Cluster


class Command(BaseCommand):
    help = "Probe every node of CLUSTER now and print who holds each VIP."

    def add_arguments(self, parser):
        parser.add_argument("cluster", help="cluster name")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print JSON")

    def handle(self, *args, cluster, as_json, **options):
        try:
            the_cluster = Cluster.objects.get(name=cluster)
        except Cluster.DoesNotExist:
            names = ", ".join(Cluster.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"No cluster named {cluster!r}; clusters: {names}") from None
        status, _ = sweep.probe_now(the_cluster)
        if as_json:
            self.stdout.write(json.dumps(status.as_dict(), indent=2))
            return
        self.stdout.write(f"{the_cluster.name} at {status.checked_at:%Y-%m-%d %H:%M:%S %Z}")
        for vip, holders in status.holders.items():
            who = ", ".join(holders) or ("unknown" if status.unreachable else "NO HOLDER")
            flag = "  SPLIT BRAIN" if len(holders) > 1 else ""
            self.stdout.write(f"  {vip}: {who}{flag}")
        for n in status.nodes:
            if n.reachable:
                drift = {True: ", config drift", False: "", None: ""}[n.drift]
                running = "keepalived running" if n.keepalived_running else "keepalived NOT running"
                self.stdout.write(f"  {n.name}: {n.vrrp_state}, {running}{drift}")
            else:
                self.stdout.write(f"  {n.name}: UNREACHABLE - {n.error}")
