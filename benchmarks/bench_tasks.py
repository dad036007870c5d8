"""Tasks the benchmarks enqueue."""

import time

from djjobs import task


@task()
def noop():
    """Does nothing: measures djjobs' own cost per job."""
    return None


@task()
def stamp():
    """Returns the wall-clock time (time.time()) at which the task started running.

    The pick-up latency benchmark compares it with the time the enqueuing transaction
    committed, both read from the same machine's clock.
    """
    return time.time()


def _pipeline():
    """A 4-step workflow of no-op steps (one, then two in parallel, then one): measures what
    running jobs as a workflow costs over running them as plain jobs (benchmarks/workflows.py)."""
    from djjobs.workflows import Step, Workflow

    return Workflow("bench-pipeline", [Step("a", noop), [Step("b1", noop), Step("b2", noop)], Step("c", noop)])


pipeline = _pipeline()
