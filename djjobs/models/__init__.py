from .event import Event
from .job import Job, JobQuerySet
from .queue import FlowStart, Queue
from .schedule import Schedule, ScheduleQuerySet
from .worker import Worker, WorkerQuerySet
from .workflow import RunStatus, WorkflowRun

__all__ = [
    "Event",
    "FlowStart",
    "Job",
    "JobQuerySet",
    "Queue",
    "Schedule",
    "ScheduleQuerySet",
    "RunStatus",
    "Worker",
    "WorkerQuerySet",
    "WorkflowRun",
]
