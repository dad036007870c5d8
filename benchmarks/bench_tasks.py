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


# Flow control (benchmarks/run.py --only flow): the same no-op under each rule.


@task(fifo_key=lambda key: f"bench:{key}")
def fifo_noop(key):
    """A no-op whose jobs of one key run one at a time, in order."""
    return None


@task(concurrency=50)
def limited_noop():
    """A no-op of which at most 50 run at once in the cluster."""
    return None


@task(rate_limit="5000/s")
def rated_noop():
    """A no-op of which at most 5,000 start in any second."""
    return None
