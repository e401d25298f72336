from django.db import migrations

# State only: the views are unmanaged, so Django writes no COMMENT here. After every
# view sync, reporting.services.bi_comments_apply writes the comments to PostgreSQL,
# with the declared noun for "order" (reporting.wording.comment). These two lost the
# example shop's words: "in the order that defines" (a sequence, not an order) and
# "pending -> complete (paid)".


class Migration(migrations.Migration):

    dependencies = [
        ('reporting', '0021_keys_of_any_type'),
    ]

    operations = [
        migrations.AlterModelTableComment(
            name='orderstatushistoryview',
            table_comment='Every status row of every order, sorted as the latest status is defined, with the status before it and the time spent in it. Filter on order_id for one order: any other filter reads the whole history first (seconds at a million orders).',
        ),
        migrations.AlterModelTableComment(
            name='ordertransitionsdailyliveview',
            table_comment='Status changes per day (UTC) and kind (from_status -> to_status), exact at query time.',
        ),
    ]
