from . import jobs, workers  # noqa: F401  (registers the admins)
