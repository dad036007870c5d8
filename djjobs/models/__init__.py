from .job import Job, JobQuerySet

__all__ = ["Job", "JobQuerySet"]
