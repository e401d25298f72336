from django.db import migrations

# The index REPORTING_SOURCE needs on Oscar's history: "the latest status change of
# order X" in one probe, and the order DISTINCT ON (order_id) reads in. Oscar
# indexes order_id and date_created apart. (manage.py check --database default
# prints this statement when the index is missing.)
INDEX = (
    "CREATE INDEX IF NOT EXISTS oscar_shop_statuschange_latest "
    'ON "order_orderstatuschange" ("order_id", "date_created" DESC, "id" DESC)'
)


class Migration(migrations.Migration):
    dependencies = [
        ("order", "0021_billingaddress_code_shippingaddress_code"),
    ]

    operations = [
        migrations.RunSQL(INDEX, reverse_sql="DROP INDEX IF EXISTS oscar_shop_statuschange_latest"),
    ]
