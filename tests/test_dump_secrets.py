"""A copy of the database holds no plaintext secret: not a dumpdata, not the file, not pg_dump.

The secrets are committed (transaction=True), so they really are in the database file or the
server when it is read; a positive control (the credential's name, and ciphertext) proves the
dump read is the right one.
"""

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from clusters.models import Cluster, SSHCredential
from tests.conftest import make_private_key

PASSPHRASE = "correct horse battery"
AUTH_PASS = "vrrp9Pw"
MARKER = "dump-probe-credential"


@pytest.fixture
def secrets_committed(transactional_db):
    key = make_private_key()
    credential = SSHCredential.objects.create(
        name=MARKER, username="root", private_key=key, passphrase=PASSPHRASE
    )
    cluster = Cluster.objects.create(
        name="web",
        network="192.0.2.0/24",
        virtual_router_id=51,
        auth_pass=AUTH_PASS,
        credential=credential,
    )
    return [key, PASSPHRASE, AUTH_PASS, cluster.notify_secret]


def key_pieces(secrets):
    """Each secret, and each line of the key's base64 body (a dump may re-wrap or escape it)."""
    for secret in secrets:
        yield secret
        for line in secret.splitlines():
            if len(line) >= 12 and "PRIVATE KEY" not in line:
                yield line


def assert_no_plaintext(data: bytes, secrets):
    assert MARKER.encode() in data, "the dump does not even hold the rows: wrong database?"
    assert b"fernet:" in data
    for piece in key_pieces(secrets):
        assert piece.encode() not in data


def test_dumpdata_holds_no_plaintext_secret(secrets_committed):
    out = io.StringIO()
    call_command("dumpdata", "clusters", stdout=out)
    assert_no_plaintext(out.getvalue().encode(), secrets_committed)


def test_the_database_itself_holds_no_plaintext_secret(secrets_committed):
    if connection.vendor == "sqlite":
        name = Path(connection.settings_dict["NAME"])
        # WAL mode: recent pages are in the -wal file until a checkpoint.
        data = b"".join(
            p.read_bytes() for p in (name, Path(f"{name}-wal"), Path(f"{name}-shm")) if p.exists()
        )
    elif connection.vendor == "postgresql":
        # A skip would pass silently; the PostgreSQL client comes with the server here.
        assert shutil.which("pg_dump"), "pg_dump is not installed (Debian: postgresql-client)"
        s = connection.settings_dict
        env = {**os.environ, "PGPASSWORD": s.get("PASSWORD") or ""}
        command = ["pg_dump", "--no-owner", "-d", s["NAME"]]
        for flag, key in (("-h", "HOST"), ("-p", "PORT"), ("-U", "USER")):
            if s.get(key):
                command += [flag, str(s[key])]
        data = subprocess.run(command, env=env, capture_output=True, check=True, timeout=60).stdout
    else:
        pytest.fail(f"no raw dump for {connection.vendor}")
    assert_no_plaintext(data, secrets_committed)


def test_dumpdata_round_trips_through_loaddata(secrets_committed, tmp_path):
    from clusters.models import SSHCredential

    dump = tmp_path / "dump.json"
    call_command("dumpdata", "clusters.sshcredential", output=str(dump))
    before = {c.name: (c.private_key, c.passphrase) for c in SSHCredential.objects.all()}
    SSHCredential.objects.update(private_key="overwritten", passphrase="")
    call_command("loaddata", str(dump), verbosity=0)
    assert {c.name: (c.private_key, c.passphrase) for c in SSHCredential.objects.all()} == before


def test_ciphertext_is_refused_as_input(db):
    from django.core.exceptions import ValidationError

    from clusters.crypto import encrypt
    from clusters.models import SSHCredential

    credential = SSHCredential(name="stolen", username="root", private_key=encrypt("x"))
    with pytest.raises(ValidationError) as e:
        credential.full_clean()
    assert "private_key" in e.value.message_dict
