"""The demo's data and its failover buttons; scripts/demo.sh runs this with the demo's environment.

    python scripts/demo_setup.py setup PREFIX      a superuser "demo" (password: $DEMO_PASSWORD)
                                                   and a cluster "demo" of the running lab PREFIX
    python scripts/demo_setup.py failover PREFIX   stop keepalived on the node holding the VIP
    python scripts/demo_setup.py recover PREFIX    start keepalived again where it is stopped

It lives beside the demo, not in clusters/, because it builds on the test lab (tests/lab).
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLUSTER = "demo"
USERNAME = "demo"


def setup(lab):
    from django.contrib.auth import get_user_model

    from tests.lab_cluster import make_lab_cluster

    get_user_model().objects.create_superuser(
        username=USERNAME, password=os.environ["DEMO_PASSWORD"], email=""
    )
    # The lab's key as the credential, its nodes (priorities 100, 110, 120), its reload command,
    # and one VIP in its network that no node owns.
    cluster = make_lab_cluster(lab, name=CLUSTER, vrid=51)
    vip = cluster.vips.get()
    vip.label = "demo"
    vip.full_clean()
    vip.save()
    nodes = ", ".join(f"{n.name} {n.address}" for n in cluster.nodes.order_by("priority"))
    print(f"Cluster {CLUSTER!r}: VIP {vip.address}, nodes {nodes}")


def vip_of_demo():
    from clusters.models import Cluster

    return Cluster.objects.get(name=CLUSTER).vips.order_by("pk").first().address


def failover(lab):
    from tests.lab import wait_until

    vip = vip_of_demo()
    holders = lab.vip_holders(vip)
    if not holders:
        print(f"No node holds {vip} right now: nothing to fail over (try: recover).")
        return 1
    node = holders[0]
    # SIGTERM, like `systemctl stop keepalived`: the holder gives the VIP up and the next
    # priority takes it over at once (a crash would take about 3 advert intervals).
    node.kill_keepalived()
    print(f"Stopped keepalived on {node.name}, which held {vip}.")
    try:
        new = wait_until(lambda: [n for n in lab.vip_holders(vip) if n is not node], timeout=15)
    except TimeoutError:
        print("No other node took the VIP within 15 s.")
        return 1
    print(f"{', '.join(n.name for n in new)} took it over. Bring {node.name} back with: recover")
    return 0


def recover(lab):
    stopped = [n for n in lab if not n.keepalived_running()]
    for node in stopped:
        node.start_keepalived()
        print(f"Started keepalived on {node.name}.")
    if not stopped:
        print("keepalived runs on every node already.")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("setup", "failover", "recover"))
    parser.add_argument("prefix", help="the demo lab's prefix")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vipanel.settings")
    import django

    django.setup()
    from tests.lab import Lab

    lab = Lab.load(args.prefix)
    if args.action == "setup":
        return setup(lab)
    return {"failover": failover, "recover": recover}[args.action](lab)


if __name__ == "__main__":
    sys.exit(main())
