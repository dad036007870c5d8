from . import events, jobs, queues, schedules, workers, workflows  # noqa: F401  (registers the admins)
