"""Secrets at rest: the database only ever holds Fernet ciphertext, code sees plaintext."""

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from clusters import crypto
from clusters.models import Cluster, SSHCredential
from tests.conftest import make_private_key

pytestmark = pytest.mark.django_db

PASSPHRASE = "correct horse battery"
AUTH_PASS = "vrrp9Pw"


def new_key():
    return Fernet.generate_key().decode()


def raw(model, column, pk):
    """The column as stored, read past the ORM (no from_db_value)."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(column)} FROM {table} WHERE id = %s", [pk]
        )
        return cursor.fetchone()[0]


@pytest.fixture
def secrets_stored(db):
    key = make_private_key()
    credential = SSHCredential.objects.create(
        name="ops", username="root", private_key=key, passphrase=PASSPHRASE
    )
    cluster = Cluster.objects.create(
        name="web",
        network="192.0.2.0/24",
        virtual_router_id=51,
        auth_pass=AUTH_PASS,
        credential=credential,
    )
    return credential, cluster, key


def _plaintexts(secrets_stored):
    credential, cluster, key = secrets_stored
    return [
        (SSHCredential, "private_key", credential.pk, key),
        (SSHCredential, "passphrase", credential.pk, PASSPHRASE),
        (Cluster, "auth_pass", cluster.pk, AUTH_PASS),
        (Cluster, "notify_secret", cluster.pk, cluster.notify_secret),
    ]


def test_every_secret_is_stored_encrypted(secrets_stored):
    for model, column, pk, plaintext in _plaintexts(secrets_stored):
        stored = raw(model, column, pk)
        assert stored.startswith("fernet:"), column
        assert plaintext not in stored, column
        # Not even a recognisable piece of it (the key's body, a word of the passphrase).
        for piece in plaintext.split():
            if len(piece) >= 6:
                assert piece not in stored, column


def test_secrets_round_trip(secrets_stored):
    credential, cluster, key = secrets_stored
    credential = SSHCredential.objects.get(pk=credential.pk)
    cluster = Cluster.objects.get(pk=cluster.pk)
    assert credential.private_key == key
    assert credential.passphrase == PASSPHRASE
    assert cluster.auth_pass == AUTH_PASS
    assert len(cluster.notify_secret) >= 32
    assert SSHCredential.objects.values_list("passphrase", flat=True).get() == PASSPHRASE


def test_the_same_secret_encrypts_differently_each_time(db):
    a = Cluster.objects.create(
        name="a", network="192.0.2.0/24", virtual_router_id=1, auth_pass="same"
    )
    b = Cluster.objects.create(
        name="b", network="192.0.2.0/24", virtual_router_id=2, auth_pass="same"
    )
    assert raw(Cluster, "auth_pass", a.pk) != raw(Cluster, "auth_pass", b.pk)


def test_each_cluster_gets_its_own_notify_secret(db):
    a = Cluster.objects.create(name="a", network="192.0.2.0/24", virtual_router_id=1)
    b = Cluster.objects.create(name="b", network="192.0.2.0/24", virtual_router_id=2)
    assert a.notify_secret != b.notify_secret


def test_an_empty_secret_stays_empty(db):
    credential = SSHCredential.objects.create(name="nopass", private_key=make_private_key())
    assert raw(SSHCredential, "passphrase", credential.pk) == ""
    assert SSHCredential.objects.get(pk=credential.pk).passphrase == ""


def test_a_queryset_update_encrypts_too(secrets_stored):
    _, cluster, _ = secrets_stored
    Cluster.objects.filter(pk=cluster.pk).update(auth_pass="newpass1")
    stored = raw(Cluster, "auth_pass", cluster.pk)
    assert stored.startswith("fernet:") and "newpass1" not in stored
    assert Cluster.objects.get(pk=cluster.pk).auth_pass == "newpass1"


def test_a_wrong_key_is_a_clear_configuration_error(secrets_stored, settings):
    credential, _, _ = secrets_stored
    settings.FIELD_ENCRYPTION_KEY = new_key()
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted with FIELD_ENCRYPTION_KEY"):
        SSHCredential.objects.get(pk=credential.pk)


@pytest.mark.parametrize("value", ["", "not-a-key", "too-short=", " , "])
def test_a_malformed_key_is_a_clear_configuration_error(db, settings, value):
    settings.FIELD_ENCRYPTION_KEY = value
    with pytest.raises(ImproperlyConfigured, match="Fernet keys"):
        Cluster.objects.create(name="a", network="192.0.2.0/24", virtual_router_id=1)


def test_a_plaintext_value_in_an_encrypted_column_is_refused(secrets_stored):
    _, cluster, _ = secrets_stored
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE clusters_cluster SET auth_pass = %s WHERE id = %s", ["leaked", cluster.pk]
        )
    with pytest.raises(ImproperlyConfigured, match="not encrypted"):
        Cluster.objects.get(pk=cluster.pk)


def test_values_written_with_an_old_key_still_decrypt_after_a_new_key_is_put_first(db, settings):
    old, new = new_key(), new_key()
    settings.FIELD_ENCRYPTION_KEY = old
    cluster = Cluster.objects.create(
        name="web", network="192.0.2.0/24", virtual_router_id=51, auth_pass=AUTH_PASS
    )
    written_with_old = raw(Cluster, "auth_pass", cluster.pk)

    settings.FIELD_ENCRYPTION_KEY = f"{new},{old}"
    cluster = Cluster.objects.get(pk=cluster.pk)
    assert cluster.auth_pass == AUTH_PASS
    cluster.save()  # a save re-encrypts with the first key

    settings.FIELD_ENCRYPTION_KEY = new
    assert Cluster.objects.get(pk=cluster.pk).auth_pass == AUTH_PASS
    with pytest.raises(ImproperlyConfigured):
        crypto.decrypt(written_with_old)


def test_rotate_moves_a_value_to_the_first_key(db, settings):
    old, new = new_key(), new_key()
    settings.FIELD_ENCRYPTION_KEY = old
    stored = crypto.encrypt("s3cret")
    settings.FIELD_ENCRYPTION_KEY = f"{new},{old}"
    rotated = crypto.rotate(stored)
    assert rotated.startswith("fernet:") and rotated != stored
    settings.FIELD_ENCRYPTION_KEY = new
    assert crypto.decrypt(rotated) == "s3cret"


def test_rotate_refuses_a_value_that_is_not_encrypted(db):
    with pytest.raises(ImproperlyConfigured, match="not encrypted"):
        crypto.rotate("plain")
