import pytest
from django.test.utils import CaptureQueriesContext

from djjobs.models import Job


@pytest.fixture
def jobs():
    return Job.objects


@pytest.fixture
def capture_queries():
    from django.db import connection

    return lambda: CaptureQueriesContext(connection)
