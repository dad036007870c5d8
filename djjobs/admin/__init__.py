from . import jobs  # noqa: F401  (registers the Job admin)
