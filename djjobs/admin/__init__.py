from . import events, jobs, workers  # noqa: F401  (registers the admins)
