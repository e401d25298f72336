# The exactness audit (issue 24): its runs, and "audit" entries in the change log,
# which mark the keys an audit found wrong as changed, so that real-time reads and
# the next fold recompute them. Only the app's own tables.

import django.contrib.postgres.fields
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('reporting', '0025_bi_role_lockout'),
    ]

    operations = [
        migrations.AlterField(
            model_name='orderchange',
            name='source',
            field=models.CharField(choices=[('order_insert', 'Order created'), ('order_delete', 'Order deleted'), ('order_update_old', 'Order updated (its row before)'), ('order_update_new', 'Order updated (its row after)'), ('status_insert', 'Status row inserted'), ('status_update', 'Status row updated'), ('status_delete', 'Status row deleted'), ('truncate', 'Table truncated: every order changed'), ('audit', 'Found wrong by the audit: recomputed')], max_length=16),
        ),
        migrations.CreateModel(
            name='AuditRun',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('started', models.DateTimeField()),
                ('duration', models.DurationField()),
                ('outcome', models.CharField(choices=[('exact', 'Exact: every key checked agrees with the history'), ('mismatch', 'Mismatch: keys whose real-time row differs from the history (recomputed)'), ('recomputing', 'Not checked: real-time reads recompute everything from the history')], max_length=16)),
                ('generation', models.BigIntegerField(blank=True, help_text='The refresh run the views are of.', null=True)),
                ('range_keys', models.IntegerField(default=0, help_text='Keys of the random key range checked.')),
                ('recent_keys', models.IntegerField(default=0, help_text='Keys changed since the previous audit checked.')),
                ('keys_checked', models.IntegerField(default=0, help_text='Distinct keys checked (both parts).')),
                ('mismatches', models.IntegerField(default=0)),
                ('mismatched_keys', django.contrib.postgres.fields.ArrayField(base_field=models.TextField(), blank=True, default=list, size=None)),
                ('fold_snapshot', models.TextField(blank=True, default='')),
            ],
            options={
                'ordering': ['-id'],
                'indexes': [models.Index(fields=['started'], name='auditrun_started_idx')],
            },
        ),
    ]
