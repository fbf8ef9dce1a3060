import time

from django.core.management.base import BaseCommand, CommandError

from clusters.models import Cluster, ConfigPush
from clusters.push import run_push
from clusters.services.errors import Refused
from clusters.services.pushes import start_push


class Command(BaseCommand):
    help = "Start a rolling push of CLUSTER's configs; with --wait, follow it to the end."

    def add_arguments(self, parser):
        parser.add_argument("cluster", help="cluster name")
        parser.add_argument("--wait", action="store_true", help="print progress until it ends")
        parser.add_argument(
            "--here",
            action="store_true",
            help="run the push in this process instead of a Celery worker (implies --wait)",
        )
        parser.add_argument("--timeout", type=int, default=3600, help="seconds --wait waits")

    def handle(self, *args, cluster, wait, here, timeout, **options):
        try:
            the_cluster = Cluster.objects.get(name=cluster)
        except Cluster.DoesNotExist:
            names = ", ".join(Cluster.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"No cluster named {cluster!r}; clusters: {names}") from None
        try:
            # With --here the push is not queued for Celery: it is claimed and run right here.
            # The user is the system (None): whoever runs this holds the database already.
            push = start_push(None, the_cluster, queue=not here)
        except Refused as e:
            raise CommandError("; ".join(f"{k}: {v}" for k, v in e.errors.items())) from None
        self.stdout.write(f"Push #{push.pk} of {the_cluster.name} queued.")
        if here:
            run_push(push.pk)
        elif not wait:
            return
        self.follow(push, timeout)

    def follow(self, push, timeout):
        seen = {}
        deadline = time.monotonic() + timeout
        while True:
            push.refresh_from_db()
            for step in push.steps.all():
                if seen.get(step.pk) != step.state:
                    seen[step.pk] = step.state
                    line = f"  {step.node_name}: {step.state}"
                    if step.detail:
                        line += f" - {step.detail}"
                    self.stdout.write(line)
                    if step.state == "failed" and step.output:
                        self.stdout.write("    " + step.output.replace("\n", "\n    "))
            if not push.is_active:
                break
            if time.monotonic() > deadline:
                raise CommandError(f"Push #{push.pk} still {push.state} after {timeout}s")
            time.sleep(0.5)
        if push.state != ConfigPush.State.SUCCEEDED:
            raise CommandError(f"Push #{push.pk} {push.state}: {push.detail}")
        self.stdout.write(self.style.SUCCESS(f"Push #{push.pk} succeeded."))
