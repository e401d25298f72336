from django.db import migrations


def apply_grants(apps, schema_editor):
    # The reporting schema exists since 0001 and its views are (re)created on
    # post_migrate, where the all_views_synced handler grants again. Here: the
    # schema itself and the default privileges, if a BI group exists already.
    from reporting.services.bi import bi_grants_apply

    bi_grants_apply(using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("reporting", "0003_reporting_views")]

    operations = [migrations.RunPython(apply_grants, migrations.RunPython.noop)]
