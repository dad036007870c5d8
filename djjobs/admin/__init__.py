from . import events, jobs, queues, schedules, screens, workers, workflows  # noqa: F401  (registers the admins)
