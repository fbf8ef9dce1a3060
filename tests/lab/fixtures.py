"""pytest plugin: the `lab` marker and one namespace lab per test session.

Registered from tests/conftest.py with ``pytest_plugins = ["tests.lab.fixtures"]``.
Use ``lab`` for read-only checks; use ``clean_lab`` when a test stops daemons, writes configs
or swaps keys: every node is reset after it, so tests stay independent while sharing one lab.
Set VIPANEL_LAB_PREFIX to run a second session's lab next to this one.
"""

import os

import pytest

from .lab import DEFAULT_PREFIX, Lab

LAB_NODES = 3


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "lab: needs root; runs against the shared namespace lab (tests/lab)"
    )


@pytest.fixture(scope="session")
def lab():
    if os.geteuid() != 0:
        # A skip would count as a pass; without root the lab tests must fail loudly.
        pytest.fail(
            "the lab needs root (network namespaces, bridge, routes): run make test as root"
        )
    prefix = os.environ.get("VIPANEL_LAB_PREFIX", DEFAULT_PREFIX)
    # Under pytest-xdist each worker process brings up a lab of its own.
    prefix += os.environ.get("PYTEST_XDIST_WORKER", "").removeprefix("gw")
    the_lab = Lab.up(LAB_NODES, prefix=prefix)
    try:
        yield the_lab
    finally:
        the_lab.down()


@pytest.fixture
def clean_lab(lab):
    """The session lab; every node is put back to normal after the test."""
    yield lab
    lab.reset()
