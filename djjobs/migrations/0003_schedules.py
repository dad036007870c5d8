# Placeholder: filled in by the schedules work.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("djjobs", "0002_notify_trigger")]
    operations = []
