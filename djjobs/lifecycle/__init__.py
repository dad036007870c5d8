"""The owner of a job's life: every change of a job's status goes through this package.

- ``transitions``: the state table and the decisions (an attempt's outcome, a lost worker, a
  timeout, cancel, retry) with the error records they write. Pure: no ORM, no I/O.
- ``finish``: every transition's write, one guarded UPDATE checked against the table and the
  owner (status, lease token), the workflow advance in the same transaction (workflows sit
  above: DjjobsConfig.ready() hands ``advance`` in), and ``task_finished`` on commit; the
  worker's single and batched completion, rescue, the supervisor's kills, cancel/retry/run
  now, workflow stops and the give-back of prefetched jobs.
- ``outcome``: what an attempt produced (Outcome) and how an exception is told in an error
  record. Pure.
- ``outage``: riding out a database that is away (one helper for every loop that writes).
- ``insert``: the one insert path.

Nothing is re-exported here, so that importing one module does not import the others.
"""
