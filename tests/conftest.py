import pytest
from django.db import connection


def pytest_collection_modifyitems(config, items):
    """PostgreSQL-only tests are skipped, with a reason, on other databases; tests of concurrent
    writers (``concurrent``) on SQLite, whose writers take turns."""
    vendor = connection.vendor
    for item in items:
        if "postgresql" in item.keywords and vendor != "postgresql":
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)"))
        elif "concurrent" in item.keywords and vendor == "sqlite":
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL or MariaDB/MySQL (set DATABASE_URL)"))


@pytest.fixture(autouse=True)
def _fresh_queue_look():
    """A worker process reads which queues are paused or limited once a second; each test starts
    with a fresh look (the rows of the test before were rolled back)."""
    from djjobs.queues import forget

    forget()
    yield
    forget()


@pytest.fixture(autouse=True)
def _fresh_free_claim_memory():
    """The claim remembers for a moment that it found no free job (worker/claim.py)."""
    from djjobs.worker import claim

    claim._free_claim_empty.clear()
