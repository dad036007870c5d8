"""The admin in a real browser: the operator's flows, end to end, with a screenshot of each screen."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips these tests, saying why
    expect = None

from djjobs.models import Job, Schedule, Worker
from djjobs.testing import run_jobs
from djjobs.worker.claim import claim
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def _failed_flaky_job() -> Job:
    """A job that fails on its only attempt and would succeed on a second one."""
    result = tasks.flaky.enqueue(succeed_on=2)
    Job.objects.filter(pk=result.id).update(max_attempts=1)
    run_jobs()
    job = Job.objects.get(pk=result.id)
    assert job.status == "FAILED"
    return job


def _busy_system():
    """Some of everything: finished, failed, running, due and scheduled jobs, two live workers."""
    now = timezone.now()
    Worker.objects.create(
        id="web-1-4242-a1b2",
        hostname="web-1",
        pid=4242,
        queues=["default", "emails"],
        concurrency=4,
        jobs_done=1200,
        jobs_failed=7,
    )
    Worker.objects.create(
        id="web-2-5151-c3d4", hostname="web-2", pid=5151, queues=[], concurrency=8, jobs_done=3400, jobs_failed=2
    )
    Worker.objects.create(
        id="web-3-6161-dead",
        hostname="web-3",
        pid=6161,
        concurrency=4,
        jobs_done=50,
        last_heartbeat_at=now - timedelta(minutes=20),
    )
    for i in range(12):
        tasks.add.enqueue(i, i)
    tasks.send_receipt.enqueue(42)
    for _ in range(3):
        tasks.always_fails.enqueue()
    tasks.discards.enqueue()
    run_jobs()
    tasks.with_progress.enqueue(steps=4)
    claim("web-1-4242-a1b2", None, 1, 300)
    Job.objects.filter(status="RUNNING").update(progress=60, progress_message="step 3 of 5")
    tasks.send_receipt.using(run_after=timedelta(hours=2)).enqueue(43)
    tasks.add.using(priority=5).enqueue(100, 1)


def test_dashboard(logged_in, shoot):
    _busy_system()
    page = logged_in
    page.goto("/admin/")
    page.click("#content-main .app-djjobs a:has-text('Dashboard')")  # on the admin's index
    page.wait_for_selector("#djjobs-status-counts")
    cards = page.inner_text("#djjobs-status-counts")
    assert "FAILED" in cards and "SUCCESSFUL" in cards
    assert page.locator("svg.djjobs-chart rect").count() >= 60
    assert "always_fails" in page.inner_text("#djjobs-failing")
    assert "web-1-4242-a1b2" in page.inner_text("#djjobs-workers")
    shoot(page, "dashboard")
    page.click("#djjobs-status-counts a:has-text('FAILED')")
    page.wait_for_url(re.compile(r".*status=FAILED.*"))
    expect(page.locator("#result_list tbody tr")).to_have_count(Job.objects.filter(status="FAILED").count())


def test_filter_the_job_list(logged_in, shoot):
    _busy_system()
    page = logged_in
    page.goto("/admin/djjobs/job/")
    assert page.locator("#result_list tbody tr").count() == Job.objects.count()
    shoot(page, "job-list")
    page.click("#changelist-filter a:has-text('Failed')")
    page.wait_for_url(re.compile(r".*status=FAILED.*"))
    statuses = page.locator("#result_list tbody td.field-status_badge").all_inner_texts()
    assert statuses and set(statuses) == {"FAILED"}
    page.click("#changelist-filter a:has-text('last hour')")
    page.wait_for_url(re.compile(r".*enqueued=hour.*"))
    expect(page.locator("#result_list tbody tr")).to_have_count(4)
    page.fill("#searchbar", "always")
    page.press("#searchbar", "Enter")
    page.wait_for_url(re.compile(r".*q=always.*"))
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    shoot(page, "job-list-filtered")


def test_retry_a_failed_job_and_watch_it_succeed(logged_in, shoot):
    job = _failed_flaky_job()
    page = logged_in
    page.goto(f"/admin/djjobs/job/{job.pk}/change/")
    assert "ConnectionError" in page.inner_text("fieldset:has-text('Errors')")
    assert page.locator(".djjobs-status.djjobs-failed").first.is_visible()
    shoot(page, "job-detail-failed")

    page.goto("/admin/djjobs/job/?status=FAILED")
    page.check(f"input[name=_selected_action][value='{job.pk}']")
    page.select_option("select[name=action]", "retry_jobs")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist")).to_contain_text("Retried 1 job(s).")
    shoot(page, "job-list-retried")

    assert run_jobs() == 1  # the worker
    page.goto(f"/admin/djjobs/job/{job.pk}/change/")
    assert page.locator("fieldset").first.locator(".djjobs-status").inner_text() == "SUCCESSFUL"
    timeline = page.inner_text(".djjobs-timeline")
    assert "Attempt 1 failed" in timeline and "Attempt 2 started" in timeline and "Finished" in timeline
    shoot(page, "job-detail-retried")


def test_retry_from_the_job_page(logged_in):
    job = _failed_flaky_job()
    page = logged_in
    page.goto(f"/admin/djjobs/job/{job.pk}/change/")
    page.click(".object-tools button:has-text('Retry')")
    expect(page.locator("ul.messagelist")).to_contain_text("Retried 1 job(s).")
    assert Job.objects.get(pk=job.pk).status == "READY"


def test_schedule_with_a_bad_then_a_good_cron(logged_in, shoot):
    page = logged_in
    page.goto("/admin/djjobs/schedule/add/")
    page.fill("#id_name", "stock sync")
    page.fill("#id_task_path", "tests.testapp.tasks.add")
    page.fill("#id_args", "[1, 2]")
    page.fill("#id_cron", "61 * * * *")
    page.click("input[name=_continue]")
    expect(page.locator(".errornote").first).to_be_visible()
    expect(page.locator("#content-main")).to_contain_text("61")
    shoot(page, "schedule-bad-cron")
    assert not Schedule.objects.filter(name="stock sync").exists()

    page.fill("#id_cron", "*/5 * * * *")
    page.click("input[name=_continue]")
    page.wait_for_url(re.compile(r".*/schedule/\d+/change/.*"))
    expect(page.locator("#djjobs-preview li")).to_have_count(5)
    assert "every 5 minutes" in page.inner_text("#djjobs-preview").lower()
    shoot(page, "schedule-next-fire-times")
    assert Schedule.objects.get(name="stock sync").cron == "*/5 * * * *"


def test_cancel_a_ready_job(logged_in, shoot):
    result = tasks.send_receipt.using(run_after=timedelta(hours=1)).enqueue(7)
    page = logged_in
    page.goto("/admin/djjobs/job/?status=READY")
    page.check(f"input[name=_selected_action][value='{result.id}']")
    page.select_option("select[name=action]", "cancel_jobs")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist")).to_contain_text("Cancelled 1 job(s).")
    assert Job.objects.get(pk=result.id).status == "CANCELLED"
    shoot(page, "job-list-cancelled")


def test_workers(logged_in, shoot):
    _busy_system()
    page = logged_in
    page.goto("/admin/djjobs/worker/")
    rows = page.inner_text("#result_list")
    assert "web-1-4242-a1b2" in rows and "alive" in rows and "lost" in rows
    assert page.locator("#result_list td.field-running_now a").count() == 1
    shoot(page, "workers")


def test_follow_a_compensated_workflow_run_and_cancel_a_running_one(logged_in, shoot):
    from djjobs.models import RunStatus, WorkflowRun
    from tests.testapp.workflows import checkout

    failed = checkout.start(order_id=11, fail=True)
    run_jobs()
    running = checkout.start(order_id=12)
    page = logged_in
    page.goto("/admin/djjobs/")
    page.click("a:has-text('Workflow runs')")
    page.wait_for_selector("#result_list")
    rows = page.inner_text("#result_list")
    assert "COMPENSATED" in rows and "RUNNING" in rows and "card declined" in rows
    shoot(page, "workflow-runs")
    page.click(f"#result_list a[href*='{failed.pk}']")
    steps = page.locator("table.djjobs-steps")
    expect(steps).to_contain_text("reserve")
    expect(steps).to_contain_text("tests.testapp.workflows.wf_release")
    shoot(page, "workflow-run")
    page.click("table.djjobs-steps tr:has-text('charge') a[href*='/job/']")
    expect(page.locator("body")).to_contain_text("card declined")
    expect(page.locator("body")).to_contain_text("step charge")
    page.click(f"a[href*='{failed.pk}']")  # back to the run from the job's provenance
    expect(page.locator("table.djjobs-steps")).to_be_visible()

    page.goto("/admin/djjobs/workflowrun/?status=RUNNING")
    page.check(f"input[name=_selected_action][value='{running.pk}']")
    page.select_option("select[name=action]", "cancel_runs")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist")).to_contain_text("Cancelled 1 run(s)")
    assert WorkflowRun.objects.get(pk=running.pk).status == RunStatus.COMPENSATED
