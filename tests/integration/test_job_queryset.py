"""Job.objects' vocabulary (README, Reference: API): ready, due, running, active, finished, failed,
for_task. djjobs' own paths do not use it, so these tests are what keeps it working."""

from datetime import timedelta

import pytest
from django.utils import timezone

from djjobs.models import Job
from djjobs.states import JobStatus
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def _ids(queryset) -> set[str]:
    return {str(pk) for pk in queryset.values_list("pk", flat=True)}


def test_each_name_selects_its_statuses():
    now = timezone.now()
    made = {  # one job of each status, due now: status -> its id
        status: str(Job.objects.create(task_path=tasks.add.module_path, status=status, run_after=now).pk)
        for status in JobStatus.values
    }
    later = Job.objects.create(task_path=tasks.add.module_path, run_after=now + timedelta(hours=1))
    ready = {made[JobStatus.READY], str(later.pk)}

    assert _ids(Job.objects.ready()) == ready
    assert _ids(Job.objects.due(now)) == {made[JobStatus.READY]}
    assert _ids(Job.objects.due(now + timedelta(hours=2))) == ready
    assert _ids(Job.objects.running()) == {made[JobStatus.RUNNING]}
    assert _ids(Job.objects.failed()) == {made[JobStatus.FAILED]}
    assert _ids(Job.objects.active()) == ready | {made[s] for s in (JobStatus.RUNNING, JobStatus.WAITING)}
    assert _ids(Job.objects.finished()) == {
        made[s] for s in (JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.CANCELLED)
    }


def test_names_chain_and_for_task_takes_a_task_or_its_path():
    mine = tasks.add.enqueue(1, 2)
    tasks.record_job.enqueue(label="other")

    assert _ids(Job.objects.for_task(tasks.add)) == {mine.id}
    assert _ids(Job.objects.for_task(tasks.add.module_path).ready().due()) == {mine.id}
    assert not Job.objects.for_task("tests.testapp.tasks.nothing_by_that_name").exists()
