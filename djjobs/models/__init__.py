from .event import Event
from .job import Job, JobQuerySet
from .schedule import Schedule, ScheduleQuerySet
from .worker import Worker, WorkerQuerySet
from .workflow import RunStatus, WorkflowRun

__all__ = [
    "Event",
    "Job",
    "JobQuerySet",
    "Schedule",
    "ScheduleQuerySet",
    "RunStatus",
    "Worker",
    "WorkerQuerySet",
    "WorkflowRun",
]
