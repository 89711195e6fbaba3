"""Encrypt provider keys stored before encryption at rest (idempotent: encrypted rows are skipped)."""

from django.db import migrations


def encrypt(apps, schema_editor):  # noqa: ANN001, ANN201
    from autointerp.models import ENCRYPTED_PREFIX, encrypt_secret

    ProviderKey = apps.get_model("autointerp", "ProviderKey")
    for key in ProviderKey.objects.exclude(value__startswith=ENCRYPTED_PREFIX):
        key.value = encrypt_secret(key.value)
        key.save(update_fields=["value"])


class Migration(migrations.Migration):
    dependencies = [("autointerp", "0001_initial")]
    operations = [migrations.RunPython(encrypt, migrations.RunPython.noop)]
