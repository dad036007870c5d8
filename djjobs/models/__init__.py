from .job import Job, JobQuerySet
from .worker import Worker, WorkerQuerySet

__all__ = ["Job", "JobQuerySet", "Worker", "WorkerQuerySet"]
