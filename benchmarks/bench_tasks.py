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
