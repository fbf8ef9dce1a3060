"""manage.py adopt: take over a cluster that already runs keepalived (clusters.services.adopt).

    python manage.py adopt 192.0.2.11 192.0.2.12:2222 --credential ops
    python manage.py adopt 192.0.2.11 192.0.2.12 --credential ops \\
        --fingerprint 192.0.2.11=SHA256:... --fingerprint 192.0.2.12=SHA256:... --yes

Without a fingerprint for a node, its offered key is shown and you are asked whether it is the
node's own (compare with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on its console);
with no terminal to ask, a missing fingerprint is an error. Then the nodes are read, what was
found is printed with what vipanel will write and why, and the cluster is saved when you say
yes (or with --yes). Nothing on the nodes changes: push the new cluster to take it over.
"""

import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from clusters import constants
from clusters.models import SSHCredential
from clusters.services import adopt
from clusters.services.errors import Forbidden, Refused


def _node(spec):
    host, port = spec, 22
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else 22
    elif spec.count(":") == 1:
        host, port = spec.split(":")
    if not str(port).isdigit():
        raise CommandError(f"{spec}: write ADDRESS, ADDRESS:PORT or [IPv6]:PORT.")
    return {"address": host, "ssh_port": int(port)}


class Command(BaseCommand):
    help = (
        "Adopt a cluster that already runs keepalived: read its nodes, show what vipanel will "
        "write and why, save it. Nothing on the nodes changes until you push."
    )

    def add_arguments(self, parser):
        parser.add_argument("nodes", nargs="+", help="ADDRESS, ADDRESS:PORT or [IPv6]:PORT")
        parser.add_argument("--credential", required=True, help="SSH credential name")
        parser.add_argument(
            "--fingerprint",
            action="append",
            default=[],
            metavar="ADDRESS=SHA256:...",
            help="a node's host key fingerprint, compared with the one it offers (repeat)",
        )
        parser.add_argument("--config-path", default=constants.DEFAULT_CONFIG_PATH)
        parser.add_argument("--name", help="the new cluster's name (default: from the files)")
        parser.add_argument("--network", help="the nodes' segment (default: found)")
        parser.add_argument("--reload-command", help="how keepalived is reloaded on the nodes")
        parser.add_argument("--yes", action="store_true", help="adopt without asking")

    def handle(self, *args, **o):
        try:
            credential = SSHCredential.objects.get(name=o["credential"])
        except SSHCredential.DoesNotExist:
            names = ", ".join(SSHCredential.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"No credential {o['credential']!r}; credentials: {names}") from None
        nodes = [_node(spec) for spec in o["nodes"]]
        given = {}
        for item in o["fingerprint"]:
            address, sep, fingerprint = item.partition("=")
            if not sep:
                raise CommandError(f"--fingerprint {item}: write ADDRESS=SHA256:...")
            given[address] = fingerprint
        for node in nodes:
            node["host_key_fingerprint"] = given.get(node["address"], "")
        try:
            self.confirm_keys(nodes, credential)
            reading = adopt.read_cluster(None, nodes, credential, o["config_path"])
            self.show(reading)
            if not reading.ok:
                raise CommandError("Nothing was adopted: fix what is listed above and run again.")
            edits = {k: o[k] for k in ("name", "network", "reload_command") if o.get(k) is not None}
            if not o["yes"] and not self.ask("Adopt this cluster?"):
                raise CommandError("Nothing was adopted.")
            cluster = adopt.adopt_cluster(
                None, nodes, credential, reading.digest, edits, o["config_path"]
            )
        except ValidationError as e:
            errors = e.message_dict if hasattr(e, "error_dict") else {"": e.messages}
            raise CommandError(
                "\n".join(f"{k}: {m}" if k else m for k, ms in errors.items() for m in ms)
            ) from None
        except (Forbidden, Refused) as e:
            raise CommandError(str(getattr(e, "text", e))) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Adopted cluster {cluster.name} ({cluster.nodes.count()} nodes). Nothing on the "
                f"nodes has changed. Next: python manage.py render_config {cluster.name} NODE to "
                f"see a node's new file, then python manage.py push {cluster.name} --wait."
            )
        )

    def ask(self, question):
        if not sys.stdin.isatty():
            return False
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    def confirm_keys(self, nodes, credential):
        offers = adopt.scan_host_keys(None, nodes, credential)
        for node, offer in zip(nodes, offers, strict=True):
            if offer.error:
                raise CommandError(f"{offer.key}: {offer.error}")
            if offer.matches is True:
                self.stdout.write(f"{offer.key}: host key {offer.offered} (as given)")
                continue
            if offer.matches is False:
                raise CommandError(
                    f"{offer.key} offers host key {offer.offered}, not the given "
                    f"{offer.given}. Nothing was read."
                )
            self.stdout.write(
                f"{offer.key} offers host key {offer.offered}\n"
                "  Compare it with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the node."
            )
            if not sys.stdin.isatty():
                raise CommandError(
                    f"Give {offer.key}'s fingerprint with --fingerprint {offer.address}=SHA256:... "
                    "(no terminal to confirm it here)."
                )
            if not self.ask("  Is it the same?"):
                raise CommandError(f"{offer.key}'s host key was not trusted; nothing was read.")
            node["host_key_fingerprint"] = offer.offered

    def show(self, reading):
        out = self.stdout.write
        for key, message in reading.errors.items():
            out(self.style.ERROR(f"{key}: {message}"))
        plan = reading.plan
        if plan is None:
            return
        for message in plan.errors.values():
            out(self.style.ERROR(message))
        out(f"\nCluster {plan.name} on {plan.network}, interface {plan.interface}")
        for node in plan.nodes:
            files = ", ".join(reading.readings[node.key].files)
            state = "running" if node.running else "NOT running"
            out(f"  node {node.name} ({node.key}): keepalived {state}; read {files}")
        for inst, holders, keeper in adopt.split_brain(plan):
            out(
                self.style.WARNING(
                    f"\nSplit brain now: {inst} is held by {', '.join(holders)} at once. "
                    f"{keeper} keeps it; the first push ends the split brain."
                )
            )
        for inst in plan.instances:
            vips = " ".join(v for v, _ in inst.vips)
            prios = ", ".join(f"{k}={v}" for k, v in inst.priorities.items())
            out(
                f"\nInstance {inst.key}{' (main)' if inst.main else ''}: VRID "
                f"{inst.virtual_router_id}, VIPs {vips}, holder now "
                f"{', '.join(inst.holders) or 'nobody'}, keeps it: {inst.keeper}; "
                f"priorities {prios}"
            )
        if plan.check_type:
            out(f"\nHealth check: {plan.check_type} {plan.check_target or plan.check_script}")
        if plan.findings:
            out("\nWhere the nodes disagree, and what vipanel writes:")
        for f in plan.findings:
            values = ", ".join(f"{k}: {v}" for k, v in f.values.items())
            where = f"{f.instance} " if f.instance else ""
            out(f"- {where}{f.field}: {values} -> {f.proposed}\n  {f.reason}")
        if plan.carried:
            out("\nKept as written (not managed by vipanel, each in its own node's file):")
        for node, item in plan.carried:
            out(f"- {node.key} {item.describe()}")
        out("")
