# Placeholder: filled in by the events work.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("djjobs", "0003_schedules")]
    operations = []
