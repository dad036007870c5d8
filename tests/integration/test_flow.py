"""Flow control in one process: FIFO keys, concurrency and rate limits, paused and limited queues.

Claims and completions are driven by hand (claim(), testing.run_jobs()) so each rule is seen at
the claim that applies it; tests/acceptance/test_flow_workers.py runs them with real workers.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

import djjobs
from djjobs.compat import InvalidTask
from djjobs.lifecycle.finish import complete, release_stranded_fifo
from djjobs.lifecycle.outcome import Outcome
from djjobs.models import FlowStart, Job
from djjobs.queues import queue_states, set_queue_limits
from djjobs.tasks import task
from djjobs.testing import TEST_WORKER_ID, run_jobs
from djjobs.worker.claim import claim
from tests.testapp import tasks
from tests.testapp.models import Execution

pytestmark = pytest.mark.django_db


def labels():
    return list(Execution.objects.order_by("id").values_list("label", flat=True))


def claim_all(limit=50, queues=None):
    return claim(TEST_WORKER_ID, queues, limit, 30)


def succeed(job):
    outcome = Outcome(return_value=None)
    assert complete(job, outcome, TEST_WORKER_ID)


# -- FIFO ---------------------------------------------------------------------------------------


def test_fifo_jobs_of_a_key_wait_behind_the_first_and_run_in_enqueue_order():
    for n in range(3):
        tasks.fifo_record.enqueue("a", n)
    for n in range(2):
        tasks.fifo_record.enqueue("b", n)
    rows = list(Job.objects.order_by("fifo_key", "fifo_seq").values_list("fifo_key", "status", "fifo_seq"))
    assert [r[:2] for r in rows] == [
        ("account:a", "READY"),
        ("account:a", "WAITING"),
        ("account:a", "WAITING"),
        ("account:b", "READY"),
        ("account:b", "WAITING"),
    ]
    seqs = [r[2] for r in rows if r[0] == "account:a"]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    # One job per key can be claimed, however many threads ask.
    first = claim_all()
    assert sorted(job.args for job in first) == [["a", 0], ["b", 0]]
    assert all(job.fifo_key for job in first)
    assert claim_all() == []
    for job in first:
        succeed(job)  # each ending releases the next job of its key
    assert Job.objects.filter(status="READY").count() == 2
    assert run_jobs() == 3
    assert sorted(labels()) == ["a:1", "a:2", "b:1"]
    order_a = [label for label in labels() if label.startswith("a:")]
    assert order_a == ["a:1", "a:2"]
    assert not Job.objects.exclude(status="SUCCESSFUL").exists()


def test_a_retrying_fifo_job_keeps_its_key_and_a_failed_one_lets_the_next_run():
    tasks.fifo_record.using(max_attempts=2, retry_backoff=3600).enqueue("r", 0, fail=True)
    tasks.fifo_record.enqueue("r", 1)
    assert run_jobs() == 1  # the first attempt failed; its retry is an hour away
    first = Job.objects.get(kwargs={"fail": True})
    assert first.status == "READY" and first.run_after > timezone.now()
    assert Job.objects.get(args=["r", 1]).status == "WAITING"  # strict order: it waits
    Job.objects.filter(pk=first.pk).update(run_after=timezone.now())
    assert run_jobs() == 2  # the retry fails for good (FAILED), then the next one runs
    assert Job.objects.get(pk=first.pk).status == "FAILED"
    assert Job.objects.get(args=["r", 1]).status == "SUCCESSFUL"


def test_fifo_on_failure_hold_blocks_the_key_until_retried_or_cancelled():
    for n in (1, 2, 3):
        tasks.fifo_held.enqueue("h", n)
    assert run_jobs() == 1
    held = Job.objects.get(args=["h", 1])
    assert held.status == "FAILED" and held.fifo_hold
    assert set(Job.objects.exclude(pk=held.pk).values_list("status", flat=True)) == {"WAITING"}
    assert release_stranded_fifo() == 0  # held on purpose: not stranded
    assert run_jobs() == 0
    # A retry keeps the key (it fails again: still held); cancelling it moves the key on.
    assert djjobs.retry(held.pk) == "done"
    assert Job.objects.get(pk=held.pk).status == "READY"
    assert run_jobs() == 1
    assert Job.objects.get(pk=held.pk).status == "FAILED"
    assert djjobs.cancel(held.pk) == "done"
    assert Job.objects.get(pk=held.pk).status == "CANCELLED"
    assert run_jobs() == 2
    assert labels()[-2:] == ["held:h:2", "held:h:3"]


def test_cancelling_the_running_fifo_job_or_a_waiting_one_keeps_the_order():
    for n in range(3):
        tasks.fifo_record.enqueue("c", n)
    second = Job.objects.get(args=["c", 1])
    assert djjobs.cancel(second.pk) == "done"  # a WAITING job is cancelled at once
    first = Job.objects.get(args=["c", 0])
    assert djjobs.cancel(first.pk) == "done"  # READY, holding the key: the key moves on
    assert Job.objects.get(args=["c", 2]).status == "READY"
    assert run_jobs() == 1 and labels() == ["c:2"]


def test_a_key_left_with_waiting_jobs_and_no_holder_is_released_by_the_sweep():
    tasks.fifo_record.enqueue("s", 0)
    tasks.fifo_record.enqueue("s", 1)
    # As if the second had been enqueued while the first ended, neither seeing the other:
    Job.objects.filter(args=["s", 0]).update(status="SUCCESSFUL")
    assert Job.objects.get(args=["s", 1]).status == "WAITING"
    tasks.fifo_record.enqueue("s", 2)  # the key has a waiting job: this one waits too
    assert Job.objects.get(args=["s", 2]).status == "WAITING"
    assert release_stranded_fifo() == 1
    assert Job.objects.get(args=["s", 1]).status == "READY"
    assert run_jobs() == 2 and labels() == ["s:1", "s:2"]


def test_retrying_a_failed_fifo_job_whose_key_moved_on_puts_it_behind_the_holder():
    tasks.fifo_record.using(max_attempts=1).enqueue("q", 0, fail=True)
    tasks.fifo_record.enqueue("q", 1, ms=0)
    assert run_jobs(max_jobs=1) == 1
    failed = Job.objects.get(args=["q", 0])
    assert failed.status == "FAILED" and Job.objects.get(args=["q", 1]).status == "READY"
    assert djjobs.retry(failed.pk) == "done"
    assert Job.objects.get(pk=failed.pk).status == "WAITING"
    assert run_jobs() == 2


def test_enqueue_many_gives_each_call_its_key():
    results = tasks.fifo_record.enqueue_many([("m", 0), ("m", 1), ("n", 0)])
    assert len(results) == 3
    assert sorted(Job.objects.values_list("fifo_key", "status")) == [
        ("account:m", "READY"),
        ("account:m", "WAITING"),
        ("account:n", "READY"),
    ]


# -- concurrency ----------------------------------------------------------------------------------


def test_a_concurrency_limit_caps_running_jobs_of_the_task():
    for _ in range(5):
        tasks.two_at_a_time.enqueue()
    tasks.add.enqueue(1, 2)  # free jobs are claimed beside them
    first = claim_all()
    assert sorted(job.task_path.rsplit(".", 1)[1] for job in first) == ["add", "two_at_a_time", "two_at_a_time"]
    assert claim_all() == []
    succeed(next(job for job in first if job.task_path.endswith("two_at_a_time")))
    assert len(claim_all()) == 1
    assert Job.objects.filter(status="RUNNING", task_path__endswith="two_at_a_time").count() == 2


def test_a_per_key_limit_holds_per_key_while_other_keys_proceed():
    for customer in ("x", "x", "x", "y", "y"):
        tasks.one_per_customer.enqueue(customer)
    first = claim_all()
    assert sorted(job.args[0] for job in first) == ["x", "y"]
    assert claim_all() == []


def test_a_killed_workers_slot_is_free_once_its_lease_expires():
    for _ in range(3):
        tasks.two_at_a_time.enqueue()
    assert len(claim_all()) == 2
    assert claim_all() == []
    Job.objects.filter(status="RUNNING").update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert len(claim_all()) == 1  # before any rescue: an expired lease holds no slot


# -- rate limits ----------------------------------------------------------------------------------


def test_a_rate_limit_starts_at_most_n_per_window_and_records_each_start():
    for _ in range(8):
        tasks.five_per_two_seconds.enqueue()
    assert len(claim_all()) == 5
    assert claim_all() == []
    starts = list(FlowStart.objects.values_list("scope", "max_starts"))
    assert starts == [("task:tests.testapp.tasks.five_per_two_seconds", 5)] * 5
    # Two of the starts leave the window: two more may start, not more.
    ids = list(FlowStart.objects.values_list("id", flat=True)[:2])
    FlowStart.objects.filter(id__in=ids).update(expires_at=timezone.now() - timedelta(milliseconds=1))
    assert len(claim_all()) == 2
    assert claim_all() == []
    assert Job.objects.filter(status="READY").count() == 1


# -- queues ---------------------------------------------------------------------------------------


def test_a_paused_queue_runs_nothing_until_resumed_while_others_run():
    tasks.send_receipt.enqueue(1)  # queue "emails"
    tasks.add.enqueue(1, 1)
    assert djjobs.pause_queue("emails") is True
    assert run_jobs() == 1
    assert Job.objects.get(queue_name="emails").status == "READY"
    state = next(q for q in queue_states() if q.name == "emails")
    assert state.paused and state.due == 1
    assert djjobs.resume_queue("emails") is True
    assert run_jobs() == 1


def test_a_queue_concurrency_limit_from_the_admin_and_a_rate_limit_from_settings(settings):
    for n in range(4):
        tasks.send_receipt.enqueue(n)
    set_queue_limits("emails", concurrency=1)
    assert len(claim_all()) == 1
    assert claim_all() == []
    set_queue_limits("emails", concurrency=None)
    settings.DJJOBS = {"QUEUE_LIMITS": {"emails": {"rate_limit": "2/h"}}}
    assert len(claim_all()) == 2
    assert claim_all() == []
    state = next(q for q in queue_states() if q.name == "emails")
    assert state.rate_limit == "2/h" and state.rate_limit_from == "settings" and state.running == 3


# -- bad options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, message",
    [
        ({"concurrency": 0}, "concurrency must be a whole number"),
        ({"concurrency": True}, "concurrency must be a whole number"),
        ({"rate_limit": "100 per minute"}, "rate_limit"),
        ({"rate_limit": "0/s"}, "rate_limit"),
        ({"fifo_key": 42}, "fifo_key must be a non-empty string"),
        ({"fifo_key": ""}, "fifo_key must be a non-empty string"),
        ({"fifo_key": "a\x00b"}, "fifo_key must be a non-empty string"),
        ({"fifo_on_failure": "stop"}, 'fifo_on_failure must be "continue" or "hold"'),
        ({"concurrency_key": "k"}, "concurrency_key needs concurrency"),
        ({"rate_key": "k"}, "rate_key needs rate_limit"),
    ],
)
def test_bad_flow_options_are_refused_with_a_clear_error_writing_nothing(options, message):
    with pytest.raises(InvalidTask, match=message):
        tasks.add.using(**options).enqueue(1, 2)
    with pytest.raises(InvalidTask, match=message):
        task(**options)(_plain)
    assert not Job.objects.exists()


def _plain():
    return None


def test_a_key_callable_that_fails_or_returns_no_string_refuses_the_enqueue():
    with pytest.raises(InvalidTask, match="fifo_key: the callable raised KeyError"):
        tasks.add.using(fifo_key=lambda a, b: {}["x"]).enqueue(1, 2)
    with pytest.raises(InvalidTask, match="fifo_key must be a non-empty string"):
        tasks.add.using(fifo_key=lambda a, b: a + b).enqueue(1, 2)
    assert not Job.objects.exists()


def test_the_queues_command_lists_pauses_resumes_and_limits():
    from io import StringIO

    from django.core.management import CommandError, call_command

    tasks.send_receipt.enqueue(1)
    out = StringIO()
    call_command("queues", "pause", "emails", stdout=out)
    call_command("queues", "limit", "emails", "--concurrency", "3", "--rate", "10/m", stdout=out)
    call_command("queues", stdout=out)
    text = out.getvalue()
    assert "Queue 'emails' paused." in text
    assert "concurrency 3, rate limit 10/m" in text
    line = next(line for line in text.splitlines() if line.startswith("emails "))
    assert "paused" in line and "3 (admin)" in line and "10/m (admin)" in line
    call_command("queues", "resume", "emails", stdout=out)
    call_command("queues", "limit", "emails", "--concurrency", "none", stdout=out)
    assert "Queue 'emails' resumed." in out.getvalue()
    with pytest.raises(CommandError, match="rate_limit"):
        call_command("queues", "limit", "emails", "--rate", "lots")
    with pytest.raises(CommandError, match="concurrency must be"):
        call_command("queues", "limit", "emails", "--concurrency", "0")


def test_the_queue_admin_shows_each_queue_pauses_with_permission_and_audits(client, django_user_model):
    from django.contrib.admin.models import LogEntry
    from django.contrib.auth.models import Permission

    tasks.send_receipt.enqueue(1)
    tasks.add.enqueue(1, 2)
    admin_user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin_user)
    page = client.get("/admin/djjobs/queue/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "emails" in text and "default" in text
    response = client.post("/admin/djjobs/queue/", {"action": "pause", "_selected_action": ["emails"]}, follow=True)
    assert "1 queue paused." in response.content.decode()
    from djjobs.models import Queue

    assert Queue.objects.get(name="emails").paused
    assert LogEntry.objects.filter(object_id="emails", user=admin_user).exists()
    assert run_jobs() == 1  # the default queue's job only
    # Limits are edited on the queue's page; a bad rate is refused, nothing saved.
    response = client.post("/admin/djjobs/queue/emails/change/", {"paused": "on", "concurrency": "", "rate_limit": "x"})
    assert response.status_code == 200 and "a rate limit is" in response.content.decode()
    # A staff user who may change queues but not pause them sees no pause action.
    staff = django_user_model.objects.create_user("ops", password="pw", is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(codename="view_queue"), Permission.objects.get(codename="change_queue")
    )
    client.force_login(staff)
    response = client.post("/admin/djjobs/queue/", {"action": "resume", "_selected_action": ["emails"]})
    assert Queue.objects.get(name="emails").paused


# -- debounce -------------------------------------------------------------------------------------


def test_a_burst_of_50_debounced_enqueues_becomes_one_job_with_the_last_arguments():
    debounced = tasks.reindex.using(unique_key="reindex:42", debounce=timedelta(seconds=30))
    results = [debounced.enqueue(42, version=n) for n in range(50)]
    assert Job.objects.count() == 1
    job = Job.objects.get()
    assert len({r.id for r in results}) == 1 and results[-1].kwargs == {"version": 49}
    assert job.kwargs == {"version": 49} and job.debounce_key == "reindex:42" and job.unique_key is None
    assert job.run_after > timezone.now() + timedelta(seconds=29)
    assert run_jobs() == 0  # not due yet
    Job.objects.update(run_after=timezone.now())
    assert run_jobs() == 1 and labels() == ["reindex:42:49"]


def test_debounce_max_bounds_the_wait_from_the_first_enqueue():
    debounced = tasks.reindex.using(unique_key="k", debounce=60, debounce_max=timedelta(seconds=90))
    debounced.enqueue(1)
    first = Job.objects.get().enqueued_at
    Job.objects.update(enqueued_at=first - timedelta(seconds=80))  # the first enqueue was 80 s ago
    debounced.enqueue(1, version=2)
    job = Job.objects.get()
    assert job.run_after == first + timedelta(seconds=10)  # 90 s after the first, not now + 60


def test_once_started_a_debounced_enqueue_makes_a_new_job():
    debounced = tasks.reindex.using(unique_key="k2", debounce=5)
    debounced.enqueue(7)
    Job.objects.update(run_after=timezone.now())
    running = claim_all()
    assert len(running) == 1
    debounced.enqueue(7, version=1)  # the change arrives while the job runs: not lost
    assert Job.objects.count() == 2
    assert Job.objects.get(status="READY").kwargs == {"version": 1}


def test_debounce_is_refused_without_a_key_or_with_bad_durations():
    with pytest.raises(InvalidTask, match="debounce needs unique_key"):
        tasks.reindex.using(debounce=5).enqueue(1)
    with pytest.raises(InvalidTask, match="debounce must be"):
        tasks.reindex.using(unique_key="x", debounce=-1).enqueue(1)
    with pytest.raises(InvalidTask, match="debounce_max bounds a debounce"):
        tasks.reindex.using(unique_key="x", debounce_max=5).enqueue(1)
    with pytest.raises(InvalidTask, match="must be at least debounce"):
        tasks.reindex.using(unique_key="x", debounce=10, debounce_max=5).enqueue(1)
    assert not Job.objects.exists()


def test_a_debounced_trigger_turns_a_burst_of_saves_into_one_job():
    from djjobs import triggers
    from tests.testapp.models import TrackedOrder

    trigger = triggers.on_update(
        TrackedOrder,
        tasks.reindex,
        args=lambda o: [o.pk],
        kwargs=lambda o: {"version": o.total},
        debounce=timedelta(seconds=30),
        name="debounced-reindex",
    )
    try:
        order = TrackedOrder.objects.create()
        for n in range(50):
            order.total = n
            order.save()
        job = Job.objects.get(task_path__endswith="reindex")
        assert float(job.kwargs["version"]) == 49
    finally:
        triggers.unregister(trigger.name)


def test_metrics_show_paused_queues_limits_and_held_fifo_keys(client, django_user_model, settings):
    pytest.importorskip("prometheus_client")
    client.force_login(django_user_model.objects.create_user("staff", password="pw", is_staff=True))
    settings.DJJOBS = {"QUEUE_LIMITS": {"emails": {"rate_limit": "120/m"}}}
    djjobs.pause_queue("reports")
    set_queue_limits("emails", concurrency=4)
    tasks.fifo_held.enqueue("m", 1)
    run_jobs()
    text = client.get("/jobs/metrics/").content.decode()
    for line in [
        'djjobs_queue_paused{queue="reports"} 1.0',
        'djjobs_queue_paused{queue="emails"} 0.0',
        'djjobs_queue_concurrency_limit{queue="emails"} 4.0',
        'djjobs_queue_rate_limit_per_second{limit="120/m",queue="emails"} 2.0',
        "djjobs_fifo_keys_held_by_failed_jobs 1.0",
    ]:
        assert line in text, line


def test_pruning_keeps_a_failed_job_that_holds_its_fifo_key():
    from djjobs.maintenance.pruner import prune

    tasks.fifo_held.enqueue("p", 1)
    tasks.fifo_held.enqueue("p", 2)
    run_jobs()
    Job.objects.filter(status="FAILED").update(finished_at=timezone.now() - timedelta(days=365))
    prune()
    assert Job.objects.filter(status="FAILED").count() == 1
    assert Job.objects.get(args=["p", 2]).status == "WAITING"


def test_the_dashboard_shows_paused_queues_limits_and_held_fifo_keys(client, django_user_model):
    from django.urls import reverse

    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw"))
    djjobs.pause_queue("emails")
    set_queue_limits("emails", concurrency=3)
    tasks.fifo_held.enqueue("d", 1)
    run_jobs()
    page = client.get(reverse("admin:djjobs_dashboard")).content.decode()
    assert "Paused queue:" in page and "emails" in page and "(3 at once)" in page
    assert "1 FIFO key held by a FAILED job" in page and "held:d" in page
