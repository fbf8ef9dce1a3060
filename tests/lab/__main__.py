"""python -m tests.lab up --nodes N [--prefix P] [--json] | down [--prefix P]"""

import argparse
import json
import os
import sys

from .lab import DEFAULT_PREFIX, Lab, LabError, down


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start a lab (removing leftovers with the same prefix first)")
    p_up.add_argument("--nodes", type=int, default=3)
    # The same default as the tests' fixture: VIPANEL_LAB_PREFIX, else the default prefix.
    prefix = os.environ.get("VIPANEL_LAB_PREFIX", DEFAULT_PREFIX)
    p_up.add_argument("--prefix", default=prefix)
    p_up.add_argument("--json", action="store_true", help="print the lab's description as JSON")
    p_down = sub.add_parser("down", help="remove the lab with this prefix")
    p_down.add_argument("--prefix", default=prefix)
    args = parser.parse_args(argv)

    try:
        if args.command == "down":
            down(args.prefix)
            return 0
        lab = Lab.up(args.nodes, args.prefix)
    except LabError as e:
        print(f"lab: {e}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(lab.info(), sys.stdout, indent=2)
        print()
    else:
        print(f"lab {lab.prefix}: bridge {lab.bridge} {lab.bridge_address}, network {lab.network}")
        print(f"client key: {lab.key_path} (user root, port 22)")
        for n in lab.nodes:
            print(
                f"  {n.name}  {n.address}  {n.fingerprint}  ssh -i {lab.key_path} root@{n.address}"
            )
        print(
            f"description: {lab.json_path}\n"
            f"remove with: python -m tests.lab down --prefix {lab.prefix}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
