# The BI watchdog's record of what it ended, per role, and of the roles it locked
# out after repeated terminations (issue 24: a reconnect loop beat the watchdog).
# BI roles are granted nothing on either table.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('reporting', '0024_fold_deletes_by_row_id'),
    ]

    operations = [
        migrations.CreateModel(
            name='BiRoleLockout',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=63, unique=True)),
                ('locked_at', models.DateTimeField(auto_now_add=True)),
                ('terminations', models.PositiveIntegerField()),
                ('window', models.FloatField()),
                ('reason', models.TextField()),
            ],
            options={
                'verbose_name': 'BI role lockout',
            },
        ),
        migrations.CreateModel(
            name='BiTermination',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(db_index=True, max_length=63)),
                ('at', models.DateTimeField(auto_now_add=True)),
                ('reason', models.TextField()),
            ],
        ),
    ]
