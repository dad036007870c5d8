# A job claimed ahead of a free thread (prefetched): the rescuer gives its attempt back once
# when its worker is lost. A boolean with a database default: no table rewrite on PostgreSQL
# (>= 11), and workers of the previous version, whose INSERTs do not name it, keep working.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("djjobs", "0007_workflow_index")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="claimed_ahead",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
    ]
