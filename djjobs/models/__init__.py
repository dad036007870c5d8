from .event import Event
from .job import Job, JobQuerySet
from .worker import Worker, WorkerQuerySet

__all__ = ["Event", "Job", "JobQuerySet", "Worker", "WorkerQuerySet"]
