"""Pure decision functions: no database."""

import random
import uuid

import pytest

from djjobs.exceptions import Discard, InvalidReturnValue, Retry
from djjobs.ids import uuid7
from djjobs.lifecycle.transitions import can_transition, decide
from djjobs.payload import to_json
from djjobs.retry_policy import backoff_delay, next_delay
from djjobs.states import JobStatus
from djjobs.worker.executor import Outcome


class TestBackoff:
    @pytest.mark.parametrize("attempt,full", [(1, 2.0), (2, 4.0), (3, 8.0), (6, 64.0)])
    def test_delay_doubles_per_attempt_with_equal_jitter(self, attempt, full):
        rng = random.Random(1)
        for _ in range(200):
            delay = backoff_delay(attempt, 2.0, 3600, rng)
            assert full / 2 <= delay <= full

    def test_delay_is_capped(self):
        assert backoff_delay(30, 2.0, 60.0) <= 60.0

    def test_jitter_spreads_delays(self):
        rng = random.Random(7)
        assert len({round(backoff_delay(3, 1.0, 100, rng), 6) for _ in range(20)}) > 10

    def test_zero_base_means_immediate(self):
        assert backoff_delay(5, 0.0, 100) == 0.0


class TestNextDelay:
    def test_retries_until_max_attempts(self):
        exc = RuntimeError()
        assert next_delay(1, 3, 1.0, 10, exc) is not None
        assert next_delay(2, 3, 1.0, 10, exc) is not None
        assert next_delay(3, 3, 1.0, 10, exc) is None

    def test_discard_fails_at_once(self):
        assert next_delay(1, 5, 1.0, 10, Discard()) is None

    def test_retry_asks_for_its_delay(self):
        assert next_delay(1, 5, 1.0, 10, Retry(delay=42)) == 42

    def test_retry_still_counts_attempts(self):
        assert next_delay(5, 5, 1.0, 10, Retry(delay=1)) is None


class _Job:
    attempts = 1
    max_attempts = 3
    retry_backoff = 0.0


class TestDecide:
    def test_success(self):
        assert decide(_Job(), Outcome(return_value=1)) == (JobStatus.SUCCESSFUL, None)

    def test_retryable_failure(self):
        assert decide(_Job(), Outcome(error=ValueError()))[0] == JobStatus.READY

    def test_bad_return_value_is_not_retried(self):
        assert decide(_Job(), Outcome(error=InvalidReturnValue("x"))) == (JobStatus.FAILED, None)


class TestStates:
    def test_finished_jobs_only_go_back_to_ready(self):
        assert can_transition(JobStatus.FAILED, JobStatus.READY)
        assert not can_transition(JobStatus.SUCCESSFUL, JobStatus.READY)
        assert not can_transition(JobStatus.FAILED, JobStatus.RUNNING)

    def test_running_can_finish_or_retry(self):
        for target in (JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.READY, JobStatus.CANCELLED):
            assert can_transition(JobStatus.RUNNING, target)


class TestPayload:
    def test_tuples_become_lists(self):
        assert to_json({"a": (1, 2)}, "x")[0] == {"a": [1, 2]}

    def test_size_is_bytes_of_compact_json(self):
        assert to_json(["é"], "x")[1] == len('["é"]'.encode())

    @pytest.mark.parametrize("value", [float("nan"), float("inf"), object(), {1, 2}, b"raw", {1: "int key"}])
    def test_rejects_what_json_cannot_hold(self, value):
        with pytest.raises(ValueError, match="must be JSON-serialisable"):
            to_json([value], "Task arguments")


class TestIds:
    def test_uuid7_version_and_variant(self):
        value = uuid7()
        assert value.version == 7
        assert value.variant == uuid.RFC_4122

    def test_uuid7_sorts_by_time(self, monkeypatch):
        ids = []
        for ms in (1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_050, 1_800_000_000_000):
            monkeypatch.setattr("djjobs.ids.time.time_ns", lambda ms=ms: ms * 1_000_000)
            ids.append(uuid7())
        assert ids == sorted(ids)
        assert len(set(ids)) == 4

    def test_uuid7_texts_are_canonical_increasing_version_7_uuids_of_now(self, monkeypatch):
        from djjobs.ids import uuid7_texts

        monkeypatch.setattr("djjobs.ids.time.time_ns", lambda: 1_700_000_000_123 * 1_000_000)
        texts = uuid7_texts(1000)
        parsed = [uuid.UUID(text) for text in texts]
        assert [str(value) for value in parsed] == texts  # canonical 8-4-4-4-12 lowercase text
        assert all(value.version == 7 and value.variant == uuid.RFC_4122 for value in parsed)
        assert all(value.int >> 80 == 1_700_000_000_123 for value in parsed)  # the millisecond
        assert parsed == sorted(parsed) and len(set(parsed)) == 1000
        monkeypatch.setattr("djjobs.ids.time.time_ns", lambda: 1_700_000_000_124 * 1_000_000)
        assert uuid.UUID(uuid7_texts(1)[0]) > parsed[-1]  # the next millisecond sorts after
