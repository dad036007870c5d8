"""A job's timeline tells its whole story: every attempt's start and failure (and worker), the
operators' actions with their users, the end last; durations leave out time spent waiting."""

import re
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from djjobs.models import Job
from djjobs.testing import run_jobs
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def _shift(job_id, delta: timedelta) -> None:
    """Move every moment of a job by ``delta``, as if its life so far had happened then."""
    job = Job.objects.get(pk=job_id)
    fields = ("enqueued_at", "run_after", "started_at", "last_attempted_at", "finished_at")
    changes = {name: getattr(job, name) + delta for name in fields if getattr(job, name) is not None}
    errors = []
    for entry in job.errors:
        entry = dict(entry)
        for key in ("at", "started_at"):
            entry[key] = (datetime.fromisoformat(entry[key]) + delta).isoformat()
        errors.append(entry)
    Job.objects.filter(pk=job_id).update(errors=errors, **changes)


def _timeline(page: str) -> list[str]:
    """The timeline's rows as text, in the order shown."""
    table = page[page.index('class="djjobs-timeline"') :]
    table = table[: table.index("</table>")]
    return [re.sub(r"<[^>]+>", "", row).strip() for row in re.findall(r"<td>(?!<time).*?</td></tr>", table, re.S)]


def test_every_attempt_and_the_operators_retry_are_shown_in_order(client):
    job_id = tasks.always_fails.using().enqueue().id
    run_jobs()  # five attempts, FAILED
    job = Job.objects.get(pk=job_id)
    assert job.status == "FAILED" and all("started_at" in entry for entry in job.errors)
    _shift(job_id, -timedelta(hours=1))  # it failed an hour ago, and sat FAILED since
    client.force_login(User.objects.create_superuser("alice", password="pw"))
    client.post(reverse("admin:djjobs_job_operation", args=[job_id, "retry"]))
    run_jobs()  # attempt 6 fails too
    page = client.get(reverse("admin:djjobs_job_change", args=[job_id])).content.decode()
    rows = _timeline(page)
    started = [row for row in rows if re.match(r"Attempt \d+ started", row)]
    assert [row.split()[1] for row in started] == ["1", "2", "3", "4", "5", "6"]
    assert all(" on " in row for row in started)  # each with its worker
    assert any(row.startswith("Retried") and row.endswith("by alice") for row in rows)
    order = [
        next(i for i, row in enumerate(rows) if row.startswith(prefix))
        for prefix in (
            "Enqueued",
            "Attempt 1 started",
            "Attempt 1 failed",
            "Attempt 2 started",
            "Attempt 5 failed",
            "Retried",
            "Attempt 6 started",
            "Attempt 6 failed",
            "Finished",
        )
    ]
    assert order == sorted(order) and rows[-1].startswith("Finished")
    # The hour it sat FAILED is not run time: not on the page, not in the list.
    summary = re.search(r"Ran for ([^<]+?) over 6 attempt\(s\)", page)
    assert summary is not None and (" ms" in summary.group(1) or " s" in summary.group(1)), summary
    assert " h " not in summary.group(1) and "min" not in summary.group(1)
    listing = client.get(reverse("admin:djjobs_job_changelist")).content.decode()
    cell = re.search(r'<td class="field-duration_display">(.*?)</td>', listing, re.S).group(1)
    assert "min" not in cell and " h " not in cell and cell.strip() != "-"


def test_the_end_follows_the_last_failure_even_when_recorded_a_moment_before_it(client):
    job_id = tasks.discards.enqueue().id
    run_jobs()
    job = Job.objects.get(pk=job_id)
    # Rows written before the fix: the failure's time a moment after the job's finish.
    errors = [{**job.errors[0], "at": (job.finished_at + timedelta(milliseconds=3)).isoformat()}]
    Job.objects.filter(pk=job_id).update(errors=errors)
    client.force_login(User.objects.create_superuser("alice", password="pw"))
    rows = _timeline(client.get(reverse("admin:djjobs_job_change", args=[job_id])).content.decode())
    assert rows[-2].startswith("Attempt 1 failed") and rows[-1].startswith("Finished")


def test_a_running_job_that_succeeds_after_a_retry_counts_only_its_attempts(client):
    job_id = tasks.flaky.enqueue(succeed_on=2).id
    run_jobs()
    client.force_login(User.objects.create_superuser("alice", password="pw"))
    page = client.get(reverse("admin:djjobs_job_change", args=[job_id])).content.decode()
    rows = _timeline(page)
    assert [row[:17] for row in rows if row.startswith("Attempt")] == [
        "Attempt 1 started",
        "Attempt 1 failed ",
        "Attempt 2 started",
    ]
    assert rows[-1].startswith("Finished") and "over 2 attempt(s)" in page


def test_a_job_page_updates_live_from_a_json_view(client):
    from djjobs.testing import TEST_WORKER_ID
    from djjobs.worker.claim import claim
    from djjobs.worker.turn import process

    job_id = tasks.add.enqueue(1, 2).id
    client.force_login(User.objects.create_superuser("alice", password="pw"))
    url = reverse("admin:djjobs_job_change", args=[job_id])
    page = client.get(url).content.decode()
    live = reverse("admin:djjobs_job_live", args=[job_id])
    assert f'data-url="{live}" data-seconds="3"' in page
    assert 'data-seconds="1"' in client.get(url, {"live": "1"}).content.decode()
    data = client.get(live).json()
    assert data["status"] == "READY" and not data["finished"]
    assert "djjobs-ready" in data["fields"]["status_badge"] and "/operation/cancel/" in data["buttons"]
    [claimed] = claim(TEST_WORKER_ID, None, 1, 30)
    process(claimed, TEST_WORKER_ID)
    data = client.get(live).json()
    assert data["status"] == "SUCCESSFUL" and data["finished"] and "Finished" in data["fields"]["timeline"]
    assert "3" in data["fields"]["return_value_pretty"] and data["buttons"].strip() == ""
    assert 'id="djjobs-live"' not in client.get(url).content.decode()  # nothing more to wait for


def test_the_live_view_needs_the_permission(client):
    job_id = tasks.add.enqueue(1, 2).id
    client.force_login(User.objects.create_user("op", password="pw", is_staff=True))
    assert client.get(reverse("admin:djjobs_job_live", args=[job_id])).status_code == 403
