"""A refresh cancelled on request (the scheduler's stop) is recorded as ``cancelled``, not ``failed``."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0026_audit_runs"),
    ]

    operations = [
        migrations.AlterField(
            model_name="refreshrun",
            name="outcome",
            field=models.CharField(
                choices=[
                    ("running", "Running"),
                    ("ok", "Refreshed"),
                    ("unchanged", "Skipped: nothing changed since the last refresh"),
                    ("skipped", "Skipped: another refresh was running"),
                    ("failed", "Failed"),
                    ("abandoned", "Abandoned: its process stopped before it finished"),
                    ("cancelled", "Cancelled: stopped on request, rolled back"),
                ],
                max_length=16,
            ),
        ),
    ]
