"""rotate_encryption_key: every encrypted column moves to the first key, without loss."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from clusters import crypto
from clusters.management.commands.rotate_encryption_key import encrypted_columns
from clusters.models import AuditEntry, Cluster, SSHCredential
from tests.conftest import make_private_key
from tests.test_crypto import raw

pytestmark = pytest.mark.django_db

PASSPHRASE = "correct horse battery"
AUTH_PASS = "vrrp9Pw"


def new_key():
    return Fernet.generate_key().decode()


def rotate(*args):
    out = io.StringIO()
    call_command("rotate_encryption_key", *args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.fixture
def old(settings):
    key = new_key()
    settings.FIELD_ENCRYPTION_KEY = key
    return key


@pytest.fixture
def stored(old):
    """Two credentials (one without a passphrase) and two clusters, written under `old`."""
    keys = [make_private_key(), make_private_key()]
    with_pass = SSHCredential.objects.create(name="a", private_key=keys[0], passphrase=PASSPHRASE)
    without = SSHCredential.objects.create(name="b", private_key=keys[1])
    c1 = Cluster.objects.create(
        name="web", network="192.0.2.0/24", virtual_router_id=51, auth_pass=AUTH_PASS
    )
    c2 = Cluster.objects.create(name="db", network="198.51.100.0/24", virtual_router_id=52)
    return {
        (SSHCredential, "private_key", with_pass.pk): keys[0],
        (SSHCredential, "passphrase", with_pass.pk): PASSPHRASE,
        (SSHCredential, "private_key", without.pk): keys[1],
        (SSHCredential, "passphrase", without.pk): "",
        (Cluster, "auth_pass", c1.pk): AUTH_PASS,
        (Cluster, "auth_pass", c2.pk): "",
        (Cluster, "notify_secret", c1.pk): c1.notify_secret,
        (Cluster, "notify_secret", c2.pk): c2.notify_secret,
    }


def raw_values(stored):
    return {where: raw(where[0], where[1], where[2]) for where in stored}


def test_it_finds_every_encrypted_column():
    found = {(m.__name__, f.name) for m, fields in encrypted_columns() for f in fields}
    assert found == {
        ("SSHCredential", "private_key"),
        ("SSHCredential", "passphrase"),
        ("Cluster", "auth_pass"),
        ("Cluster", "notify_secret"),
        ("VrrpInstance", "auth_pass"),
        ("Channel", "url"),
        ("Node", "notify_key"),
        # The config last pushed, and a drifted live one: both hold auth_pass.
        ("Node", "pushed_config"),
        ("NodeState", "drift_config"),
    }


def test_it_rotates_every_value_to_the_new_key_without_loss(settings, old, stored):
    before = raw_values(stored)
    new = new_key()
    settings.FIELD_ENCRYPTION_KEY = f"{new},{old}"
    output = rotate()
    assert "clusters.SSHCredential.private_key: 2 re-encrypted" in output
    assert "clusters.SSHCredential.passphrase: 1 re-encrypted" in output
    assert "clusters.Cluster.auth_pass: 1 re-encrypted" in output
    assert "clusters.Cluster.notify_secret: 2 re-encrypted" in output
    assert "Re-encrypted 6 value(s)" in output

    after = raw_values(stored)
    for where, plaintext in stored.items():
        if plaintext:
            assert after[where] != before[where] and after[where].startswith("fernet:")
        else:
            assert after[where] == ""
    # The new key alone reads everything back, through the ORM and past it.
    settings.FIELD_ENCRYPTION_KEY = new
    fernet = Fernet(new)
    for (model, field, pk), plaintext in stored.items():
        assert getattr(model.objects.get(pk=pk), field) == plaintext
        if plaintext:
            token = after[(model, field, pk)][len(crypto.PREFIX) :]
            assert fernet.decrypt(token.encode()).decode() == plaintext
    assert "All 6 value(s) decrypt with the first key." in rotate("--check")


def test_a_rotation_is_audited_with_its_count_and_no_key(settings, old, stored):
    new = new_key()
    settings.FIELD_ENCRYPTION_KEY = f"{new},{old}"
    rotate()
    rotate("--check")  # changes nothing, so it writes nothing
    [entry] = AuditEntry.objects.filter(action="secrets.rotate")
    assert (entry.username, entry.result) == ("system", "rotated")
    assert entry.changes == {"values re-encrypted": [None, 6]}
    assert new not in str(entry.changes) and old not in str(entry.changes)


def test_check_fails_while_values_need_the_old_key(settings, old, stored):
    settings.FIELD_ENCRYPTION_KEY = f"{new_key()},{old}"
    with pytest.raises(CommandError, match="6 of 6 value"):
        rotate("--check")
    rotate()
    rotate("--check")


def test_a_value_no_key_decrypts_stops_everything(settings, old, stored):
    stranger = Fernet(new_key())
    lost = SSHCredential.objects.create(name="z", private_key="x")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE clusters_sshcredential SET private_key = %s WHERE id = %s",
            [crypto.PREFIX + stranger.encrypt(b"y").decode(), lost.pk],
        )
    before = raw_values(stored)
    settings.FIELD_ENCRYPTION_KEY = f"{new_key()},{old}"
    with pytest.raises(CommandError, match=rf"SSHCredential.private_key \(id {lost.pk}\).*Nothing"):
        rotate()
    assert raw_values(stored) == before
    assert not AuditEntry.objects.filter(action="secrets.rotate").exists()


def test_a_plaintext_value_in_an_encrypted_column_stops_everything(settings, old, stored):
    cluster = Cluster.objects.get(name="web")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE clusters_cluster SET auth_pass = 'plain' WHERE id = %s", [cluster.pk]
        )
    before = raw_values(stored)
    settings.FIELD_ENCRYPTION_KEY = f"{new_key()},{old}"
    with pytest.raises(CommandError, match="not encrypted"):
        rotate()
    assert raw_values(stored) == before


def test_with_one_key_it_says_so_and_still_reencrypts(old, stored):
    before = raw_values(stored)
    output = rotate()
    assert "Only one key is set" in output
    after = raw_values(stored)
    assert all(after[w] != before[w] for w, plaintext in stored.items() if plaintext)
    for (model, field, pk), plaintext in stored.items():
        assert getattr(model.objects.get(pk=pk), field) == plaintext


def test_a_malformed_key_setting_is_a_command_error(settings, stored):
    settings.FIELD_ENCRYPTION_KEY = "not-a-key"
    with pytest.raises(CommandError, match="FIELD_ENCRYPTION_KEY"):
        rotate()
