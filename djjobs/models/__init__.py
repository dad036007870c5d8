from .event import Event
from .job import Job, JobQuerySet
from .queue import FlowStart, Queue
from .schedule import Schedule, ScheduleQuerySet
from .screens import Dashboard, Trigger
from .worker import Worker, WorkerQuerySet
from .workflow import RunStatus, WorkflowRun

__all__ = [
    "Dashboard",
    "Event",
    "FlowStart",
    "Job",
    "JobQuerySet",
    "Queue",
    "Schedule",
    "ScheduleQuerySet",
    "RunStatus",
    "Trigger",
    "Worker",
    "WorkerQuerySet",
    "WorkflowRun",
]
