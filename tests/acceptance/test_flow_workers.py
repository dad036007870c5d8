"""Acceptance: flow control with real ``run_workers`` processes (3 processes x 4 threads).

Times come from the database. A run lies between its Execution row (written by the task as it
starts, after its claim committed) and its job's finished_at (taken before its completion
commits, which is what frees its key or slot), so "no two runs of a key overlap" and "at most N
running" are checked on those intervals. A rate limit counts starts at the claim's time, which
is the job's started_at. Waits are bounded polls of database state.
"""

import itertools
import time

import pytest

from djjobs.models import Job
from djjobs.states import JobStatus
from tests.testapp import tasks
from tests.testapp.models import Execution

from .conftest import wait_until

pytestmark = [pytest.mark.acceptance]

FAST = "tests.acceptance.fast_settings"


def three_workers(workers, settings="tests.settings"):
    started = [workers("--concurrency", "4", "--worker-id", f"flow-{i}", settings=settings) for i in range(3)]
    for worker in started:
        worker.wait_started()
    return started


def wait_all_successful(count, started, timeout=120):
    wait_until(
        lambda: Job.objects.filter(status=JobStatus.SUCCESSFUL).count() == count,
        timeout=timeout,
        message=f"{count} jobs SUCCESSFUL",
        workers=started,
    )


def most_at_once(intervals) -> int:
    """The largest number of [start, end] intervals open at one instant (an end at the same
    instant as a start closes first)."""
    events = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals], key=lambda e: (e[0], e[1])
    )
    most = open_now = 0
    for _, step in events:
        open_now += step
        most = max(most, open_now)
    return most


@pytest.mark.timeout(240)
def test_300_jobs_over_10_fifo_keys_run_in_order_one_at_a_time_per_key(workers):
    started = three_workers(workers)
    for n in range(30):
        for account in range(10):
            tasks.fifo_record.enqueue(str(account), n, ms=5)
    wait_all_successful(300, started)
    for worker in started:
        assert worker.stop() == 0, worker.log()
    run_starts = dict(Execution.objects.values_list("job_id", "created"))
    assert len(run_starts) == 300  # each ran once
    for account in range(10):
        rows = [
            (args, run_starts[str(id_)], end)
            for id_, args, end in Job.objects.filter(fifo_key=f"account:{account}")
            .order_by("fifo_seq")
            .values_list("id", "args", "finished_at")
        ]
        assert [args[1] for args, _, _ in rows] == list(range(30))
        for (_, _, end), (args, start, _) in itertools.pairwise(rows):
            assert end <= start, (
                f"account {account}: job {args[1]} started before the one ahead of it ended",
                list(
                    Job.objects.filter(fifo_key=f"account:{account}")
                    .order_by("fifo_seq")
                    .values_list("fifo_seq", "args", "started_at", "finished_at", "worker_ids", "attempts")
                ),
            )
    # Different keys ran in parallel on several workers.
    assert len({tuple(ids) for ids in Job.objects.values_list("worker_ids", flat=True)}) > 1


@pytest.mark.timeout(240)
def test_a_concurrency_limit_of_2_holds_across_three_workers(workers):
    started = three_workers(workers)
    tasks.two_at_a_time.enqueue_many([{"ms": 20} for _ in range(200)])
    samples = []
    deadline = time.monotonic() + 120
    while Job.objects.filter(status=JobStatus.SUCCESSFUL).count() < 200 and time.monotonic() < deadline:
        samples.append(Job.objects.filter(status=JobStatus.RUNNING).count())
    wait_all_successful(200, started)
    assert max(samples) <= 2, max(samples)
    run_starts = dict(Execution.objects.values_list("job_id", "created"))
    intervals = [(run_starts[str(id_)], end) for id_, end in Job.objects.values_list("id", "finished_at")]
    assert len(intervals) == 200 and most_at_once(intervals) <= 2


@pytest.mark.timeout(240)
def test_a_rate_limit_of_5_per_2_seconds_holds_in_every_window(workers):
    started = three_workers(workers)
    for _ in range(15):
        tasks.five_per_two_seconds.enqueue()
    wait_all_successful(15, started, timeout=60)
    starts = sorted(Job.objects.values_list("started_at", flat=True))
    for first, sixth in zip(starts, starts[5:]):
        assert (sixth - first).total_seconds() >= 2.0, "6 starts inside one 2-second window"


@pytest.mark.timeout(240)
def test_kill_9_of_a_worker_holding_a_fifo_job_does_not_block_the_key_past_its_lease(workers):
    victim = workers("--concurrency", "1", "--worker-id", "victim", settings=FAST)
    victim.wait_started()
    tasks.fifo_record.enqueue("k", 0, ms=60_000)
    tasks.fifo_record.enqueue("k", 1)
    wait_until(lambda: Job.objects.filter(status=JobStatus.RUNNING).exists(), timeout=30, workers=[victim])
    victim.kill()
    rescuer = workers("--concurrency", "2", "--worker-id", "rescuer", settings=FAST)
    rescuer.wait_started()
    # The lease (3 s) expires, the rescuer sends the first job back (an attempt left): it holds
    # the key and runs again; only then does the second run.
    Job.objects.filter(args__0="k", args__1=0).update(kwargs={"ms": 10})
    wait_all_successful(2, [rescuer], timeout=60)
    first, second = Job.objects.filter(fifo_key="account:k").order_by("fifo_seq")
    assert first.attempts == 2 and second.attempts == 1
    assert first.finished_at <= second.started_at


@pytest.mark.timeout(120)
def test_a_burst_worker_waits_for_a_rate_window_but_not_for_a_paused_queue(workers):
    import djjobs

    for _ in range(8):
        tasks.five_per_two_seconds.enqueue()
    tasks.send_receipt.enqueue(1)  # queue "emails", paused: does not keep the burst running
    djjobs.pause_queue("emails")
    burst = workers("--burst", "--concurrency", "4")
    assert burst.wait(90) == 0, burst.log()
    assert Job.objects.filter(task_path__endswith="five_per_two_seconds", status=JobStatus.SUCCESSFUL).count() == 8
    assert Job.objects.get(queue_name="emails").status == JobStatus.READY


@pytest.mark.timeout(180)
def test_pausing_a_queue_takes_effect_on_running_workers_without_a_restart(workers):
    import djjobs

    started = three_workers(workers)
    djjobs.pause_queue("emails")
    time.sleep(1.5)  # the documented delay: a worker looks at the queues' state once a second
    receipts = [tasks.send_receipt.enqueue(n) for n in range(5)]  # queue "emails"
    others = [tasks.record_job.enqueue(label=str(n)) for n in range(5)]  # queue "default"
    wait_until(
        lambda: Job.objects.filter(id__in=[r.id for r in others], status=JobStatus.SUCCESSFUL).count() == 5,
        timeout=60,
        workers=started,
    )
    time.sleep(2.5)  # bounded: two looks at the queues (once a second) have passed; still nothing ran
    assert set(Job.objects.filter(id__in=[r.id for r in receipts]).values_list("status", flat=True)) == {"READY"}
    djjobs.resume_queue("emails")
    wait_until(
        lambda: Job.objects.filter(id__in=[r.id for r in receipts], status=JobStatus.SUCCESSFUL).count() == 5,
        timeout=60,
        message="the resumed queue's jobs SUCCESSFUL",
        workers=started,
    )


@pytest.mark.timeout(180)
def test_kill_9_of_a_worker_holding_a_concurrency_slot_frees_it_when_its_lease_expires(workers):
    victim = workers("--concurrency", "2", "--worker-id", "victim", settings=FAST)
    victim.wait_started()
    tasks.one_per_customer.enqueue("c", ms=60_000)
    wait_until(lambda: Job.objects.filter(status=JobStatus.RUNNING).exists(), timeout=30, workers=[victim])
    tasks.one_per_customer.enqueue("c", ms=0)  # same key: waits for the slot
    victim.kill()
    other = workers("--concurrency", "2", "--worker-id", "other", settings=FAST)
    other.wait_started()
    Job.objects.filter(status=JobStatus.RUNNING).update(kwargs={"ms": 0})  # its retry is quick
    wait_all_successful(2, [other], timeout=60)
    first, second = Job.objects.order_by("enqueued_at")
    assert first.attempts == 2 and second.attempts == 1
