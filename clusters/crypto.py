"""Encryption of secrets at rest with the key(s) in settings.FIELD_ENCRYPTION_KEY."""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.signals import setting_changed
from django.db import models

# Marks a stored value as ciphertext, so a plaintext value in the column is never mistaken for one.
PREFIX = "fernet:"


@cache
def _fernet(keys):
    try:
        return MultiFernet([Fernet(k.strip()) for k in keys.split(",") if k.strip()])
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be one or more comma-separated Fernet keys "
            "(44 url-safe base64 characters each)"
        ) from None


def fernet():
    return _fernet(settings.FIELD_ENCRYPTION_KEY)


def encrypt(plaintext: str) -> str:
    return PREFIX + fernet().encrypt(plaintext.encode()).decode()


def _ciphertext(stored: str) -> bytes:
    if not stored.startswith(PREFIX):
        raise ImproperlyConfigured("an encrypted column holds a value that is not encrypted")
    return stored[len(PREFIX) :].encode()


def decrypt(stored: str) -> str:
    token = _ciphertext(stored)
    try:
        return fernet().decrypt(token).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "a stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY: "
            "was the key changed without rotate_encryption_key?"
        ) from None


def rotate(stored: str) -> str:
    """Re-encrypt with the first key (after a new key was put first)."""
    token = _ciphertext(stored)
    try:
        return PREFIX + fernet().rotate(token).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "a stored secret cannot be decrypted with any key in FIELD_ENCRYPTION_KEY: "
            "keep the old key after the new one until every value is rotated"
        ) from None


class EncryptedTextField(models.TextField):
    """A text column stored encrypted; Python code sees plaintext, the database never does.

    The empty string stays empty, so "no passphrase" needs no ciphertext.
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)

    def value_to_string(self, obj):
        # Serialization (dumpdata, fixtures) writes ciphertext: a dump holds no plaintext.
        value = self.value_from_object(obj)
        return encrypt(value) if value else value

    def to_python(self, value):
        # ...and loaddata reads it back.
        if isinstance(value, str) and value.startswith(PREFIX):
            return decrypt(value)
        return value

    def clean(self, value, model_instance):
        # Forms and the API never take ciphertext as input: pasting a stolen encrypted value
        # would otherwise make the panel decrypt it (and, say, send it to a node).
        if isinstance(value, str) and value.startswith(PREFIX):
            raise ValidationError("Enter the secret itself, not an encrypted value.")
        return super().clean(value, model_instance)


def _reset_cache(setting, **kwargs):
    if setting == "FIELD_ENCRYPTION_KEY":
        _fernet.cache_clear()


setting_changed.connect(_reset_cache)


def new_ed25519_key() -> str:
    """A fresh ed25519 private key, PEM (PKCS#8): what `openssl pkeyutl -inkey` reads (a node's
    notify signing key, clusters.notify)."""
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
