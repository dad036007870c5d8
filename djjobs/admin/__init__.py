from . import events, jobs, schedules, workers, workflows  # noqa: F401  (registers the admins)
