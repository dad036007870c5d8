"""manage.py jobs: list, show, retry, cancel, stats; their errors and exit codes."""

import io
import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from djjobs.management.commands.jobs import _duration, parse_since
from djjobs.models import Job
from djjobs.testing import run_jobs
from djjobs.worker.claim import claim
from tests.testapp import tasks
from tests.testapp.workflows import three

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


def jobs(*argv, stdin=None, **options):
    """Run `jobs`; (stdout, stderr, exit code)."""
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None:
        options["stdin"] = io.StringIO(stdin)
    try:
        call_command("jobs", *argv, stdout=out, stderr=err, **options)
        code = 0
    except CommandError as exc:
        err.write(str(exc))
        code = exc.returncode
    return out.getvalue(), err.getvalue(), code


def _failed(n=1, **using):
    results = [tasks.always_fails.using(**using).enqueue() for _ in range(n)]
    run_jobs()
    return results


# -- list -------------------------------------------------------------------------------------


def test_list_shows_the_newest_jobs_as_a_table_filtered():
    failed = _failed()
    tasks.add.enqueue(1, 2)
    tasks.send_receipt.enqueue(7)

    out, _err, code = jobs("list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["id", "status", "task", "queue", "attempts", "enqueued", "duration"]
    assert len(lines) == 4 and "tests.testapp.tasks.send_receipt" in lines[1]

    out, _err, code = jobs("list", "--status", "failed", "--task", "always_fails")
    assert code == 0 and len(out.splitlines()) == 2 and str(failed[0].id) in out
    out, _err, _code = jobs("list", "--queue", "emails", "--json")
    assert [row["task"] for row in json.loads(out)] == ["tests.testapp.tasks.send_receipt"]
    out, _err, _code = jobs("list", "--limit", "1")
    assert "more may match" in out


def test_list_with_nothing_matching_exits_3():
    tasks.add.enqueue(1, 2)
    out, err, code = jobs("list", "--status", "FAILED")
    assert (out, code) == ("", 3) and "No job matches" in err
    out, _err, code = jobs("list", "--status", "FAILED", "--json")
    assert (json.loads(out), code) == ([], 3)


def test_list_since_filters_on_enqueue_time():
    old = tasks.add.enqueue(1, 2)
    Job.objects.filter(pk=old.id).update(enqueued_at=timezone.now() - timedelta(hours=3))
    new = tasks.add.enqueue(3, 4)
    out, _err, _code = jobs("list", "--since", "2h", "--json")
    assert [row["id"] for row in json.loads(out)] == [str(new.id)]


def test_parse_since_reads_ages_dates_and_times_of_today():
    now = timezone.now()
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("2026-12-05T10:00:00+00:00").isoformat() == "2026-12-05T10:00:00+00:00"
    assert timezone.localtime(parse_since("2026-12-05")).hour == 0
    assert timezone.localtime(parse_since("10:00", now)).date() == timezone.localdate(now)


def test_durations_read_as_a_person_would_say_them():
    said = [_duration(timedelta(seconds=s)) for s in (0.0004, 0.25, 4.26, 42, 137, 7322)]
    assert said == ["< 1 ms", "250 ms", "4.3 s", "42 s", "2 min 17 s", "2 h 2 min"]
    assert _duration(None) == "-"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["list", "--status", "DONE"], "--status 'DONE': use one or more of READY"),
        (["list", "--since", "yesterday"], "--since 'yesterday': give an ISO date"),
        (["list", "--since", "2026-13-45"], "--since '2026-13-45'"),
        (["list", "--limit", "0"], "--limit must be from 1 to 10000, got 0."),
        (["list", "01a200b6-0000-7000-8000-000000000000"], "jobs list takes no job ids"),
        (["show"], "jobs show takes one job id."),
        (["show", "nope"], "'nope' is not a job id"),
        (["retry"], "jobs retry needs job ids, or --all-matching with filters."),
        (
            ["cancel", "--status", "FAILED", "01a200b6-0000-7000-8000-000000000000"],
            "The filters go with --all-matching",
        ),
        (["retry", "--all-matching", "01a200b6-0000-7000-8000-000000000000"], "give job ids or --all-matching"),
        (["stats", "--all-matching"], "--all-matching goes with retry or cancel."),
        (["retry", "--all-matching", "--batch-size", "0"], "--batch-size must be at least 1, got 0."),
    ],
)
def test_bad_usage_exits_2_and_says_why(argv, message):
    _out, err, code = jobs(*argv)
    assert code == 2
    assert message in err


# -- show -------------------------------------------------------------------------------------


def test_show_prints_the_timeline_and_the_last_traceback():
    (failed,) = _failed()
    out, _err, code = jobs("show", str(failed.id))
    assert code == 0
    assert out.startswith(f"Job {failed.id}\n")
    assert "status:    FAILED" in out and "attempts:  5 of 5" in out
    timeline = out.split("Timeline\n")[1].split("\n\n")[0]
    assert "Enqueued on queue default" in timeline
    assert "Attempt 5 failed: builtins.RuntimeError: boom" in timeline
    assert timeline.rstrip().endswith("Finished FAILED")
    assert out.count("    | ") >= 2 and 'raise RuntimeError("boom")' in out  # the last traceback only
    assert out.count("Traceback (most recent call last)") == 1


def test_show_a_result_as_json():
    done = tasks.add.enqueue(2, 3)
    run_jobs()
    out, _err, _code = jobs("show", str(done.id))
    assert "result:    5" in out
    out, _err, _code = jobs("show", str(done.id), "--json")
    shown = json.loads(out)
    assert (shown["return_value"], shown["args"], shown["status"]) == (5, [2, 3], "SUCCESSFUL")
    assert [moment["what"] for moment in shown["timeline"]][-1] == "Finished SUCCESSFUL"


def test_show_an_unknown_job_exits_3():
    _out, err, code = jobs("show", "01a200b6-0000-7000-8000-000000000000")
    assert code == 3 and "No job 01a200b6-0000-7000-8000-000000000000" in err


# -- retry, cancel ----------------------------------------------------------------------------


def test_retry_ids_retries_and_reports_each_skip_reason_with_exit_1(caplog):
    (failed,) = _failed()
    ready = tasks.add.enqueue(1, 2)
    unknown = "01a200b6-0000-7000-8000-000000000000"
    with caplog.at_level(logging.INFO, logger="djjobs"):
        out, err, code = jobs("retry", str(failed.id), str(ready.id), unknown)
    assert Job.objects.get(pk=failed.id).status == "READY"
    assert out.splitlines() == [
        "Retried 1 job(s).",
        "Skipped 1: not finished yet (READY, RUNNING or WAITING).",
        f"Not found (1): {unknown}",
    ]
    assert code == 1 and "2 job(s) were left as they were" in err
    (audit,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("cli retry")]
    assert f"on {failed.id} {ready.id} {unknown}: changed=1 requested=0 skipped=1" in audit


def test_retry_everything_asked_exits_0_and_json_says_what_changed():
    failed = _failed(2)
    out, _err, code = jobs("retry", *(str(r.id) for r in failed), "--json")
    assert code == 0
    assert json.loads(out) == {
        "action": "retry",
        "matched": 2,
        "changed": 2,
        "requested": 0,
        "skipped": {},
        "batches": 1,
        "not_found": [],
    }


def test_retry_unknown_ids_exits_3():
    _out, err, code = jobs("retry", "01a200b6-0000-7000-8000-000000000000")
    assert code == 3 and "No job with that id" in err


def test_cancel_ids_cancels_and_asks_running_jobs_to_stop():
    tasks.add.enqueue(3, 4)
    (running,) = claim("w", None, 1, 30)
    ready = tasks.add.enqueue(1, 2)
    out, _err, code = jobs("cancel", str(ready.id), str(running.id))
    assert code == 0
    assert out.splitlines()[0] == "Cancelled 1 job(s)."
    assert out.splitlines()[1].startswith("Asked 1 running job(s) to stop")
    assert Job.objects.get(pk=ready.id).status == "CANCELLED"
    assert Job.objects.get(pk=running.id).cancel_requested_at is not None


def test_retry_all_matching_asks_first_and_changes_nothing_without_yes():
    _failed(3)
    out, err, code = jobs("retry", "--all-matching", "--status", "FAILED", stdin="n\n")
    assert "Retry the 3 job(s) matching --status FAILED? [y/N]" in err and out == ""
    assert code == 1 and "Nothing was changed." in err
    _out, err, code = jobs("retry", "--all-matching", "--status", "FAILED", stdin="")
    assert code == 1 and "give --yes" in err
    assert Job.objects.filter(status="FAILED").count() == 3


def test_retry_all_matching_in_batches_with_progress():
    _failed(3, queue_name="emails")
    _failed(1)
    out, err, code = jobs(
        "retry", "--all-matching", "--status", "FAILED", "--queue", "emails", "--batch-size", "2", stdin="y\n"
    )
    assert code == 0
    assert out == "Retried 3 job(s).\n"
    assert err.endswith("[y/N]   2 of 3 done (2 retried)\n  3 of 3 done (3 retried)\n")
    assert list(Job.objects.order_by("status").values_list("queue_name", "status")) == [
        ("default", "FAILED"),
        ("emails", "READY"),
        ("emails", "READY"),
        ("emails", "READY"),
    ]


def test_retry_all_matching_skips_a_workflows_step_and_says_so():
    three.start(fail_at="c")
    run_jobs()
    out, _err, code = jobs("retry", "--all-matching", "--status", "FAILED", "--yes", "--json")
    report = json.loads(out)
    assert code == 1
    assert (report["changed"], report["skipped"]) == (1, {"workflow_step": 1})


def test_cancel_all_matching_with_nothing_matching_exits_3():
    tasks.add.enqueue(1, 2)
    _out, err, code = jobs("cancel", "--all-matching", "--task", "always_fails", "--yes")
    assert code == 3 and "No job matches --task always_fails." in err
    assert Job.objects.get().status == "READY"


# -- stats ------------------------------------------------------------------------------------


def test_stats_counts_per_status_and_queue():
    _failed(2)
    tasks.send_receipt.enqueue(1)
    tasks.add.using(run_after=timedelta(hours=1)).enqueue(1, 2)
    out, _err, code = jobs("stats")
    assert code == 0
    assert "READY       2" in out and "FAILED      2" in out
    emails = next(line for line in out.splitlines() if line.startswith("emails"))
    assert emails.split() == ["emails", "1", "1", "0", "0", "0", "0"]
    out, _err, _code = jobs("stats", "--json")
    stats = json.loads(out)
    assert stats["statuses"]["FAILED"] == 2 and stats["queues"]["default"]["failed_1h"] == 2
    assert stats["queues"]["default"]["ready"] == 1 and stats["queues"]["default"]["due"] == 0


def test_stats_says_when_a_count_stopped_at_its_limit(settings):
    settings.DJJOBS = {**settings.DJJOBS, "HEALTH_COUNT_LIMIT": 2}
    for i in range(3):
        tasks.add.enqueue(i, i)
    out, _err, _code = jobs("stats")
    assert "READY       2+" in out and "counted up to DJJOBS['HEALTH_COUNT_LIMIT'] = 2" in out


# -- exit codes from the command line ---------------------------------------------------------


@pytest.mark.django_db(transaction=False)
def test_exit_codes_from_the_command_line(tmp_path):
    (tmp_path / "cli_settings.py").write_text(
        "from tests.settings import *  # noqa\n"
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', "
        f"'NAME': {str(tmp_path / 'db.sqlite3')!r}}}}}\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "DJANGO_SETTINGS_MODULE": "cli_settings"}

    def manage(*argv):
        return subprocess.run(
            [sys.executable, "-m", "django", *argv], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )

    assert manage("migrate", "-v", "0").returncode == 0
    assert manage("jobs", "stats").returncode == 0
    nothing = manage("jobs", "list")
    assert nothing.returncode == 3 and "No job matches these filters." in nothing.stderr
    unknown = manage("jobs", "frobnicate")
    assert unknown.returncode == 2 and "invalid choice: 'frobnicate'" in unknown.stderr
    bad = manage("jobs", "show", "nope")
    assert bad.returncode == 2 and "'nope' is not a job id" in bad.stderr


def test_a_cli_retry_is_recorded_in_the_jobs_history_as_the_given_user(django_user_model):
    from django.contrib.admin.models import LogEntry

    ops = django_user_model.objects.create_user("ops")
    result = tasks.always_fails.using(max_attempts=1).enqueue()
    run_jobs()
    call_command("jobs", "retry", str(result.id), "--as", "ops", stdout=io.StringIO())
    entry = LogEntry.objects.get(object_id=str(result.id))
    assert entry.user == ops and entry.change_message.startswith("Retried")
    with pytest.raises(CommandError, match="--as 'nobody': no such user"):
        call_command("jobs", "retry", str(result.id), "--as", "nobody", stdout=io.StringIO())
