import sys

import django.db.models.deletion
from django.apps import apps as installed_apps
from django.db import DatabaseError, migrations, models

# The example shop's Order and OrderStatus move to the app examples.shop (its
# migration 0001 takes them over, tables and all): in the reporting app's state
# they end here, and its reports' permissions, which lived on Order, move to a
# model of their own (Report, no table). A project without the example app has
# no use for the two tables the earlier migrations made: they are dropped here,
# if they are empty.
PERMISSIONS = ("view_reports", "read_live", "view_metrics")
EXAMPLE_TABLES = ("reporting_example_orderstatus", "reporting_example_order")


def move_permissions(apps, schema_editor):
    """Keep every grant of the reports' permissions: the same rows, now on Report."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    db = schema_editor.connection.alias
    old = ContentType.objects.using(db).filter(app_label="reporting", model="order").first()
    if old is None:
        return  # a new database: permissions are created after migrate, on Report
    new, _ = ContentType.objects.using(db).get_or_create(app_label="reporting", model="report")
    Permission.objects.using(db).filter(content_type=old, codename__in=PERMISSIONS).update(content_type=new)


def move_permissions_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    db = schema_editor.connection.alias
    new = ContentType.objects.using(db).filter(app_label="reporting", model="report").first()
    if new is None:
        return
    old, _ = ContentType.objects.using(db).get_or_create(app_label="reporting", model="order")
    Permission.objects.using(db).filter(content_type=new, codename__in=PERMISSIONS).update(content_type=old)


def drop_unused_example_tables(apps, schema_editor):
    if installed_apps.is_installed("examples.shop"):
        return
    with schema_editor.connection.cursor() as cursor:
        drop_example_tables(cursor)


def drop_example_tables(cursor):
    """Drop the two example tables if they are empty and nothing else depends on them.

    Locked first, so that no row or dependent object can come between the check and
    the drop; never CASCADE: a view or a foreign key of the project's own over them
    keeps them (and it), with a message that says why.
    """
    present = []
    for table in EXAMPLE_TABLES:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        if cursor.fetchone()[0]:
            present.append(table)
    if not present:
        return
    cursor.execute("SET LOCAL lock_timeout = '10s'")
    cursor.execute(f"LOCK TABLE {', '.join(present)} IN ACCESS EXCLUSIVE MODE")
    for table in present:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")  # noqa: S608 - a constant
        if cursor.fetchone()[0]:
            return  # rows someone wrote: left alone
    cursor.execute("SAVEPOINT reporting_drop_example")
    try:
        cursor.execute(f"DROP TABLE {', '.join(present)} RESTRICT")
    except DatabaseError as exc:
        cursor.execute("ROLLBACK TO SAVEPOINT reporting_drop_example")
        detail = getattr(getattr(exc, "__cause__", None), "diag", None)
        sys.stderr.write(
            f"  Kept the empty tables {', '.join(present)}: other objects depend on them "
            f"({(detail.message_detail if detail else None) or exc}). Drop them by hand once nothing needs them.\n"
        )
    else:
        cursor.execute("RELEASE SAVEPOINT reporting_drop_example")


class Migration(migrations.Migration):

    dependencies = [
        ("reporting", "0016_declared_statuses"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                # The read-only models relate to the declared keys now, not to the example's orders.
                migrations.AlterField(
                    model_name="orderlateststatus",
                    name="order",
                    field=models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="latest_status",
                        serialize=False,
                        to="reporting.keyrow",
                    ),
                ),
                migrations.AlterField(
                    model_name="orderlateststatuslive",
                    name="order",
                    field=models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="latest_status_live",
                        serialize=False,
                        to="reporting.keyrow",
                    ),
                ),
                migrations.DeleteModel(name="OrderStatus"),
                migrations.DeleteModel(name="Order"),
                migrations.CreateModel(
                    name="Report",
                    fields=[("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"))],
                    options={
                        "managed": False,
                        "default_permissions": (),
                        "permissions": [
                            ("view_reports", "Can see the order reports: dashboard, API and CSV export"),
                            ("read_live", "Can ask the API for live reads, whose cost grows with the data"),
                            ("view_metrics", "Can read the Prometheus metrics (/metrics)"),
                        ],
                    },
                ),
            ],
            database_operations=[
                migrations.RunPython(move_permissions, move_permissions_back),
                migrations.RunPython(drop_unused_example_tables, migrations.RunPython.noop),
            ],
        ),
    ]
