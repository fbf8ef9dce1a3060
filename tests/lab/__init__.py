"""The namespace lab: real sshd and keepalived nodes on one machine (see tests/lab/lab.py)."""

from .lab import (
    DEFAULT_PREFIX,
    RELOAD_COMMAND,
    Lab,
    LabError,
    Node,
    down,
    up,
    wait_until,
)

__all__ = [
    "DEFAULT_PREFIX",
    "RELOAD_COMMAND",
    "Lab",
    "LabError",
    "Node",
    "down",
    "up",
    "wait_until",
]
