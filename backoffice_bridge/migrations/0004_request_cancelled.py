"""A maker may cancel their own undecided request: the ``cancelled`` status (choices only;
no column or constraint changes — a cancelled request is not open, so it does not block
new requests for the same bank user)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("backoffice_bridge", "0003_audit_append_only")]

    operations = [
        migrations.AlterField(
            model_name="actionrequest",
            name="status",
            field=models.CharField(
                choices=[
                    ("awaiting_confirmation", "Awaiting customer confirmation"),
                    ("pending", "Pending"),
                    ("picked", "Picked up"),
                    ("approved", "Approved"),
                    ("rejected", "Rejected"),
                    ("expired", "Expired"),
                    ("executing", "Executing"),
                    ("done", "Done"),
                    ("failed", "Failed"),
                    ("cancelled", "Cancelled"),
                ],
                default="pending",
                max_length=32,
            ),
        ),
    ]
