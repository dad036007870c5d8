"""The admin on a laptop screen and a phone (issue 18): at 1366x900 with Django's navigation
sidebar open, every column of the job list, a workflow run's steps, the schedules and the
workers is visible without a horizontal scroll; the dashboard's panel titles are legible in
both themes (computed contrast ≥ 4.5:1) and the dashboard fits a phone's width; the dashboard
and a job's page update without a reload."""

from datetime import timedelta

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips these tests, saying why
    expect = None

from djjobs.models import Job, Schedule
from djjobs.testing import run_jobs
from tests.browser.conftest import PASSWORD
from tests.browser.test_admin_flows import _busy_system
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}

# Where a table overflows: the page, or any ancestor that clips or scrolls it; the cells whose
# right edge lies beyond what is shown.
OVERFLOW = """(selector) => {
    const table = document.querySelector(selector);
    if (!table) { return {missing: selector}; }
    const problems = [];
    const page = document.documentElement;
    if (page.scrollWidth > window.innerWidth) {
        problems.push(`page ${page.scrollWidth} px wide in ${window.innerWidth}`);
    }
    let right = window.innerWidth;
    for (let node = table.parentElement; node && node !== document.body; node = node.parentElement) {
        const style = getComputedStyle(node);
        if (style.overflowX !== "visible") {
            if (node.scrollWidth > node.clientWidth + 1) {
                problems.push(`${node.tagName}.${node.className} scrolls: ${node.scrollWidth} > ${node.clientWidth}`);
            }
            right = Math.min(right, node.getBoundingClientRect().right);
        }
    }
    for (const cell of table.querySelectorAll("th, td")) {
        const box = cell.getBoundingClientRect();
        if (box.width > 0 && box.right > right + 1) {
            problems.push(`cell "${cell.innerText.trim().slice(0, 30)}" ends at ${Math.round(box.right)} > ${Math.round(right)}`);
        }
    }
    const headers = [...table.querySelectorAll("thead th")];
    return {
        problems: problems,
        headers: headers.map(th => th.innerText.trim()),
        widths: headers.map(th => `${th.innerText.trim()}:${Math.round(th.getBoundingClientRect().width)}`).join(" "),
    };
}"""

CONTRAST = """(selector) => {
    function rgb(text) { return text.match(/[\\d.]+/g).map(Number); }
    function luminance(c) {
        const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    }
    function background(node) {
        for (; node; node = node.parentElement) {
            const c = rgb(getComputedStyle(node).backgroundColor);
            if (c.length < 4 || c[3] > 0) { return c; }
        }
        return [255, 255, 255];
    }
    return [...document.querySelectorAll(selector)].map(node => {
        const text = node.querySelector("a") || node;
        const a = luminance(rgb(getComputedStyle(text).color)), b = luminance(background(node));
        return {title: node.innerText.trim(), ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)};
    });
}"""


def _open(browser, server, admin_user, viewport=LAPTOP, color_scheme="light"):
    context = browser.new_context(viewport=viewport, base_url=server, color_scheme=color_scheme)
    context.set_default_timeout(15_000)
    # Django's navigation sidebar open, as a new user finds it.
    context.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'true')")
    page = context.new_page()
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", admin_user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    return page


@pytest.fixture
def laptop(browser, server, admin_user):
    page = _open(browser, server, admin_user)
    yield page
    page.context.close()


def _fits(page, selector):
    result = page.evaluate(OVERFLOW, selector)
    assert "missing" not in result, result
    assert result["problems"] == [], (result["widths"], result["problems"][:6])
    return result["headers"]


def test_the_job_list_fits_a_laptop_screen(laptop, shoot):
    _busy_system()
    Job.objects.filter(status="FAILED").update(task_path="tests.testapp.tasks.a_task_with_a_rather_long_name_indeed")
    laptop.goto("/admin/djjobs/job/")
    assert laptop.locator("#nav-sidebar").is_visible()
    shoot(laptop, "job-list-1366")
    headers = _fits(laptop, "#result_list")
    for column in ("Status", "Task", "Queue", "Attempts", "Enqueued", "Duration", "Progress"):
        assert any(column.lower() in header.lower() for header in headers), (column, headers)


def test_a_workflow_runs_steps_fit_a_laptop_screen(laptop, shoot):
    from tests.testapp.workflows import checkout

    run = checkout.start(order_id=11, fail=True)
    run_jobs()
    laptop.goto(f"/admin/djjobs/workflowrun/{run.pk}/change/")
    shoot(laptop, "workflow-run-1366")
    headers = _fits(laptop, "table.djjobs-steps")
    assert any("compensation" in header.lower() for header in headers), headers
    expect(laptop.locator("table.djjobs-steps")).to_contain_text("wf_release")
    shoot(laptop, "workflow-run-1366")


def test_the_schedules_list_fits_a_laptop_screen(laptop, shoot):
    from djjobs.schedules import tick

    for name, cron in (("nightly report for the finance team", "0 2 * * *"), ("every five", "*/5 * * * *")):
        schedule = Schedule(name=name, task_path="tests.testapp.tasks.record_job", cron=cron, time_zone="Europe/London")
        schedule.full_clean()
        schedule.save()
    tick.run_now(Schedule.objects.get(name="every five"))
    run_jobs()
    Schedule.objects.filter(name="every five").update(last_run_at=Schedule.objects.get(name="every five").updated_at)
    laptop.goto("/admin/djjobs/schedule/")
    headers = _fits(laptop, "#result_list")
    for column in ("Next run", "Last run", "Enabled", "Source"):
        assert any(column.lower() in header.lower() for header in headers), (column, headers)
    shoot(laptop, "schedules-1366")


def test_the_workers_list_fits_a_laptop_screen(laptop, shoot):
    _busy_system()
    laptop.goto("/admin/djjobs/worker/")
    headers = _fits(laptop, "#result_list")
    assert any("heartbeat" in header.lower() for header in headers), headers
    shoot(laptop, "workers-1366")


def test_the_triggers_list_fits_a_laptop_screen(laptop, shoot):
    from djjobs import triggers
    from tests.testapp.models import TrackedOrder

    declared = [
        triggers.on_update(
            TrackedOrder, tasks.order_changed, when=triggers.changed("status", from_="paid", to="shipped")
        ),
        triggers.on_create(TrackedOrder, tasks.order_changed, args=lambda order: [order.pk], unique=True),
    ]
    try:
        laptop.goto("/admin/djjobs/trigger/")
        shoot(laptop, "triggers-1366")
        expect(laptop.locator("#result_list tbody tr")).to_have_count(len(triggers.registered()))
        _fits(laptop, "#result_list")
    finally:
        for trigger in declared:
            triggers.unregister(trigger)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_dashboard_panel_titles_are_legible(browser, server, admin_user, theme, shoot):
    from tests.testapp.workflows import checkout

    _busy_system()
    checkout.start(order_id=5)
    page = _open(browser, server, admin_user, color_scheme=theme)
    try:
        page.goto("/admin/djjobs/dashboard/?refresh=0")
        titles = page.evaluate(CONTRAST, ".djjobs-section h2")
        assert {t["title"] for t in titles} >= {"Workflow runs", "Queues", "Workers"}, titles
        assert all(t["ratio"] >= 4.5 for t in titles), titles
        shoot(page, f"dashboard-{theme}")
    finally:
        page.context.close()


def test_the_dashboard_fits_a_phone(browser, server, admin_user, shoot):
    _busy_system()
    page = _open(browser, server, admin_user, viewport=PHONE)
    try:
        page.goto("/admin/djjobs/dashboard/?refresh=0")
        shoot(page, "dashboard-phone")
        wide = page.evaluate(
            """() => [...document.querySelectorAll("#content-main *")]
                .filter(node => node.getBoundingClientRect().right > window.innerWidth + 1)
                .slice(0, 5).map(node => `${node.tagName}#${node.id}.${node.className}`)"""
        )
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (width, wide)
        assert page.locator("#djjobs-status-counts").is_visible()
    finally:
        page.context.close()


def test_the_dashboard_updates_without_a_reload(laptop):
    laptop.goto("/admin/djjobs/dashboard/?refresh=1")
    failed = laptop.locator("#djjobs-status-counts a:has(.djjobs-failed) .djjobs-card-number")
    expect(failed).to_have_text("0")
    laptop.evaluate("window.djjobsLoaded = true")  # gone if the page reloads
    tasks.discards.enqueue()
    run_jobs()
    expect(failed).to_have_text("1", timeout=10_000)
    assert laptop.evaluate("window.djjobsLoaded") is True


def test_a_job_page_updates_without_a_reload(laptop):
    job_id = tasks.add.using(run_after=timedelta(seconds=0)).enqueue(2, 3).id
    laptop.goto(f"/admin/djjobs/job/{job_id}/change/?live=1")
    status = laptop.locator(".field-status_badge .readonly")
    expect(status).to_contain_text("READY")
    expect(laptop.locator(".object-tools")).to_contain_text("Cancel")
    laptop.evaluate("window.djjobsLoaded = true")
    run_jobs()
    expect(status).to_contain_text("SUCCESSFUL", timeout=10_000)
    expect(laptop.locator(".field-timeline .readonly")).to_contain_text("Finished")
    expect(laptop.locator(".object-tools")).not_to_contain_text("Cancel")
    assert laptop.evaluate("window.djjobsLoaded") is True


def test_the_job_page_buttons_line_up_and_labels_are_not_repeated(laptop):
    result = tasks.flaky.enqueue(succeed_on=2)
    Job.objects.filter(pk=result.id).update(max_attempts=1)
    run_jobs()
    laptop.goto(f"/admin/djjobs/job/{result.id}/change/")
    retry = laptop.locator(".object-tools button:has-text('Retry')").bounding_box()
    history = laptop.locator(".object-tools a:has-text('History')").bounding_box()
    assert abs(retry["y"] - history["y"]) <= 1 and abs(retry["height"] - history["height"]) <= 1, (retry, history)
    assert not laptop.locator(".field-timeline label").is_visible()
    assert not laptop.locator(".field-errors_display label").is_visible()
