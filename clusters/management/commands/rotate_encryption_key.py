"""Re-encrypt every encrypted column under the first key of FIELD_ENCRYPTION_KEY.

The procedure (README, "Rotating the encryption key"): put a new key first,
FIELD_ENCRYPTION_KEY=new,old; run this; check with the new key alone (--check); drop the old key.
"""

from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from clusters import audit, crypto
from clusters.crypto import EncryptedTextField


def encrypted_columns():
    """[(model, [field, ...])] for every model with an encrypted column, in a stable order."""
    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if fields:
            found.append((model, fields))
    return sorted(found, key=lambda item: item[0]._meta.label)


def first_key():
    return Fernet(settings.FIELD_ENCRYPTION_KEY.split(",")[0].strip())


def _plaintext_under(fernet, stored):
    """stored's plaintext if fernet (one key) decrypts it, else None."""
    if not stored.startswith(crypto.PREFIX):
        return None
    try:
        return fernet.decrypt(stored[len(crypto.PREFIX) :].encode()).decode()
    except InvalidToken:
        return None


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted column of every model with the first key of "
        "FIELD_ENCRYPTION_KEY, in one transaction; each value is checked before and after. "
        "--check only reports whether the first key alone decrypts everything."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="Change nothing; fail unless the first key alone decrypts every value (run "
            "this with only the new key set before deleting the old one).",
        )

    def handle(self, *args, check, **options):
        try:
            crypto.fernet()
            first = first_key()
        except (ImproperlyConfigured, ValueError) as e:
            raise CommandError(f"FIELD_ENCRYPTION_KEY: {e}") from None
        keys = [k for k in settings.FIELD_ENCRYPTION_KEY.split(",") if k.strip()]
        if check:
            self.check_only(first)
            return
        if len(keys) == 1:
            self.stdout.write(
                "Only one key is set: values are re-encrypted under it (fresh tokens). To move to "
                "a new key, set FIELD_ENCRYPTION_KEY=new,old first."
            )
        total = 0
        try:
            with transaction.atomic():
                for model, fields in encrypted_columns():
                    total += self.rotate_model(model, fields, first)
                # In the rotation's transaction, as every change is audited: who rotated and
                # how many values, never a key or a value.
                audit.record(
                    None,
                    "secrets.rotate",
                    object_type="encryption key",
                    changes={"values re-encrypted": [None, total]},
                    result="rotated",
                )
        except ImproperlyConfigured as e:
            raise CommandError(f"{e}. Nothing was changed.") from None
        self.stdout.write(
            self.style.SUCCESS(f"Re-encrypted {total} value(s) under the first key; committed.")
        )

    def _select(self, model, fields, lock):
        qn = connection.ops.quote_name
        columns = ", ".join(qn(f.column) for f in fields)
        # Raw SQL: the ORM would decrypt on read (from_db_value) and encrypt again on write.
        sql = f"SELECT {qn(model._meta.pk.column)}, {columns} FROM {qn(model._meta.db_table)}"
        sql += f" ORDER BY {qn(model._meta.pk.column)}"
        if lock and connection.features.has_select_for_update:
            sql += " FOR UPDATE"
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()

    def rotate_model(self, model, fields, first):
        qn = connection.ops.quote_name
        table, pk_column = qn(model._meta.db_table), qn(model._meta.pk.column)
        counts = dict.fromkeys((f.name for f in fields), 0)
        expected = {}
        for pk, *values in self._select(model, fields, lock=True):
            new_values = []
            for field, stored in zip(fields, values, strict=True):
                if stored is None or stored == "":
                    new_values.append(stored)
                    continue
                where = f"{model._meta.label}.{field.name} (id {pk})"
                try:
                    plaintext = crypto.decrypt(stored)
                    rotated = crypto.rotate(stored)
                except ImproperlyConfigured as e:
                    raise ImproperlyConfigured(f"{where}: {e}") from None
                if _plaintext_under(first, rotated) != plaintext:
                    raise ImproperlyConfigured(f"{where}: the re-encrypted value does not decrypt")
                new_values.append(rotated)
                expected[(pk, field.name)] = plaintext
                counts[field.name] += 1
            if new_values != list(values):
                assignments = ", ".join(f"{qn(f.column)} = %s" for f in fields)
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"UPDATE {table} SET {assignments} WHERE {pk_column} = %s",
                        [*new_values, pk],
                    )
        # Read back what is now stored: each value must give its plaintext with the new key alone.
        for pk, *values in self._select(model, fields, lock=False):
            for field, stored in zip(fields, values, strict=True):
                wanted = expected.get((pk, field.name))
                if wanted is not None and _plaintext_under(first, stored) != wanted:
                    raise ImproperlyConfigured(
                        f"{model._meta.label}.{field.name} (id {pk}): the stored value does not "
                        "decrypt with the first key after rotation"
                    )
        for name, count in counts.items():
            self.stdout.write(f"{model._meta.label}.{name}: {count} re-encrypted")
        return sum(counts.values())

    def check_only(self, first):
        total = failing = 0
        for model, fields in encrypted_columns():
            for pk, *values in self._select(model, fields, lock=False):
                for field, stored in zip(fields, values, strict=True):
                    if stored is None or stored == "":
                        continue
                    total += 1
                    if _plaintext_under(first, stored) is None:
                        failing += 1
                        self.stderr.write(
                            f"{model._meta.label}.{field.name} (id {pk}): not readable with the "
                            "first key alone"
                        )
        if failing:
            raise CommandError(
                f"{failing} of {total} value(s) need an older key: keep it and run "
                "rotate_encryption_key (with FIELD_ENCRYPTION_KEY=new,old)."
            )
        self.stdout.write(self.style.SUCCESS(f"All {total} value(s) decrypt with the first key."))
