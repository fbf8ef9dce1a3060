"""A throwaway network namespace for running real keepalived and iptables in tests.

    with throwaway_netns(interfaces=("eth0",)) as ns:
        ns.run(["iptables", "-S"])

Needs root and iproute2; when they are missing this raises, so a test using it fails instead of
skipping. The namespace is deleted (and whatever still runs in it killed) on the way out.
"""

import secrets
import subprocess
from contextlib import contextmanager

PREFIX = "vptest-"
TIMEOUT = 30

# Runs argv with a private /run in its own PID namespace. `keepalived -t` (2.2.7) was traced:
# it parses the file in one process, reads the interfaces over netlink and exits, writing no pid
# file and nothing under /run. This wrapper costs nothing and keeps it that way if a later
# version, or a test that forgets -t, starts a real daemon: its pid files land in a tmpfs, and it
# dies with the namespace's init when the command ends.
_PRIVATE_RUN = [
    "unshare",
    "--pid",
    "--fork",
    "--mount-proc",
    "sh",
    "-c",
    'mount -t tmpfs -o mode=755 tmpfs /run && exec "$@"',
    "netns-private-run",
]


def _run(argv, **kwargs):
    return subprocess.run(
        argv, check=False, capture_output=True, text=True, timeout=TIMEOUT, **kwargs
    )


def _must(argv):
    result = _run(argv)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return result


class Netns:
    def __init__(self, name):
        self.name = name

    def run(self, argv, *, input=None, private_run=False) -> subprocess.CompletedProcess:
        """Run argv inside the namespace; stdout and stderr are captured as text."""
        wrapper = _PRIVATE_RUN if private_run else []
        return _run(["ip", "netns", "exec", self.name, *wrapper, *argv], input=input)

    def must(self, argv, *, input=None):
        result = self.run(argv, input=input)
        if result.returncode != 0:
            raise RuntimeError(
                f"in {self.name}: {' '.join(argv)} exited {result.returncode}: "
                f"{result.stderr.strip()}"
            )
        return result

    def add_interface(self, name, peer):
        # A dummy link is the natural stand-in, but some kernels are built without the dummy
        # driver ("Unknown device type"); a veth pair whose other end also stays inside works
        # everywhere and is as good for keepalived and iptables.
        if self.run(["ip", "link", "add", name, "type", "dummy"]).returncode != 0:
            self.must(["ip", "link", "add", name, "type", "veth", "peer", "name", peer])
            self.must(["ip", "link", "set", peer, "up"])
        self.must(["ip", "link", "set", name, "up"])


@contextmanager
def throwaway_netns(interfaces=("eth0",), addresses=()):
    """A fresh namespace with each interface up; addresses are (interface, "addr/prefix") pairs.

    IPv6 addresses are added without duplicate address detection, so they are usable at once.
    """
    name = PREFIX + secrets.token_hex(4)
    _must(["ip", "netns", "add", name])
    try:
        ns = Netns(name)
        ns.must(["ip", "link", "set", "lo", "up"])
        for index, interface in enumerate(interfaces):
            ns.add_interface(interface, peer=f"vptpeer{index}")
        for interface, address in addresses:
            extra = ["nodad"] if ":" in address else []
            ns.must(["ip", "addr", "add", address, "dev", interface, *extra])
        yield ns
    finally:
        pids = _run(["ip", "netns", "pids", name]).stdout.split()
        for pid in pids:
            _run(["kill", "-9", pid])
        _must(["ip", "netns", "del", name])
