from .event import Event
from .job import Job, JobQuerySet
from .schedule import Schedule, ScheduleQuerySet
from .worker import Worker, WorkerQuerySet

__all__ = ["Event", "Job", "JobQuerySet", "Schedule", "ScheduleQuerySet", "Worker", "WorkerQuerySet"]
