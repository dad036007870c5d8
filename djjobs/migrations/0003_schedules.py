# Schedules (djjobs.scheduler): the Schedule table, and on Job the schedule that fired it and
# the fire time it is for, unique together so each fire time has at most one job.
import django.db.models.deletion
from django.db import migrations, models

import djjobs.models.schedule


class Migration(migrations.Migration):
    dependencies = [("djjobs", "0002_notify_trigger")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="scheduled_for",
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name="scheduled for"),
        ),
        migrations.CreateModel(
            name="Schedule",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=255, unique=True, verbose_name="name")),
                (
                    "task_path",
                    models.CharField(help_text="Dotted path of a djjobs task.", max_length=255, verbose_name="task"),
                ),
                ("args", models.JSONField(blank=True, default=list, help_text="A JSON list of positional arguments.")),
                ("kwargs", models.JSONField(blank=True, default=dict, help_text="A JSON object of keyword arguments.")),
                (
                    "cron",
                    models.CharField(
                        blank=True,
                        default="",
                        help_text="5 fields (minute hour day month weekday), or 6 with seconds last; e.g. 0 2 * * *",
                        max_length=120,
                        verbose_name="cron",
                    ),
                ),
                (
                    "interval",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="Every N seconds, at the multiples of N since 1970-01-01 UTC.",
                        null=True,
                        verbose_name="interval (seconds)",
                    ),
                ),
                (
                    "run_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="One run at this time; the schedule disables itself after it.",
                        null=True,
                        verbose_name="run once at",
                    ),
                ),
                (
                    "time_zone",
                    models.CharField(
                        default=djjobs.models.schedule.default_time_zone,
                        help_text="IANA name, e.g. Europe/London; cron and run_at are read in it.",
                        max_length=64,
                        verbose_name="time zone",
                    ),
                ),
                ("enabled", models.BooleanField(default=True, verbose_name="enabled")),
                ("queue_name", models.CharField(blank=True, default="", max_length=64, verbose_name="queue")),
                (
                    "priority",
                    models.SmallIntegerField(blank=True, help_text="-100..100", null=True, verbose_name="priority"),
                ),
                (
                    "overlap",
                    models.CharField(
                        choices=[("allow", "allow"), ("skip", "skip")],
                        default="allow",
                        help_text="skip: do not fire while the previous run is READY or RUNNING.",
                        max_length=10,
                        verbose_name="overlap",
                    ),
                ),
                (
                    "misfire",
                    models.CharField(
                        choices=[("run_once", "run_once"), ("skip", "skip"), ("run_all", "run_all")],
                        default="run_once",
                        help_text="Runs missed while no worker ran: one catch-up run, none, or all.",
                        max_length=10,
                        verbose_name="misfire",
                    ),
                ),
                ("description", models.TextField(blank=True, default="", verbose_name="description")),
                ("next_run_at", models.DateTimeField(blank=True, null=True, verbose_name="next run")),
                (
                    "last_run_at",
                    models.DateTimeField(blank=True, help_text="Its fire time.", null=True, verbose_name="last run"),
                ),
                ("last_job_id", models.UUIDField(blank=True, editable=False, null=True, verbose_name="last job")),
                ("skipped_runs", models.PositiveIntegerField(default=0, verbose_name="skipped runs")),
                ("last_skipped_at", models.DateTimeField(blank=True, null=True, verbose_name="last skipped")),
                (
                    "last_skip_reason",
                    models.CharField(blank=True, default="", max_length=255, verbose_name="last skip reason"),
                ),
                ("code_managed", models.BooleanField(default=False, editable=False, verbose_name="code-managed")),
                ("code_definition", models.JSONField(blank=True, editable=False, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "verbose_name": "schedule",
                "verbose_name_plural": "schedules",
                "ordering": ["name"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("enabled", True)), fields=["next_run_at"], name="djjobs_schedule_due_idx"
                    ),
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(
                                models.Q(("cron", ""), _negated=True),
                                ("interval__isnull", True),
                                ("run_at__isnull", True),
                            ),
                            models.Q(("cron", ""), ("interval__isnull", False), ("run_at__isnull", True)),
                            models.Q(("cron", ""), ("interval__isnull", True), ("run_at__isnull", False)),
                            _connector="OR",
                        ),
                        name="djjobs_schedule_one_timing",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("interval__isnull", True), ("interval__gte", 1), _connector="OR"),
                        name="djjobs_schedule_interval_positive",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("priority__isnull", True),
                            models.Q(("priority__gte", -100), ("priority__lte", 100)),
                            _connector="OR",
                        ),
                        name="djjobs_schedule_priority_range",
                    ),
                ],
            },
        ),
        migrations.AddField(
            model_name="job",
            name="schedule",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="jobs",
                to="djjobs.schedule",
            ),
        ),
        migrations.AddConstraint(
            model_name="job",
            constraint=models.UniqueConstraint(
                condition=models.Q(("schedule__isnull", False)),
                fields=("schedule", "scheduled_for"),
                name="djjobs_job_schedule_fire_unique",
            ),
        ),
    ]
