"""DJJOBS settings: every key has a type and a range (djjobs.conf.RULES), checked without a database."""

import logging
import re
from pathlib import Path

import pytest

from djjobs import checks, conf

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reference"


def ids(configured) -> list[str]:
    return [problem.id for problem in conf.validate(configured)]


def test_every_key_has_a_rule_and_its_default_is_valid():
    assert set(conf.RULES) == set(conf.DEFAULTS)
    assert conf.validate(dict(conf.DEFAULTS)) == []
    assert conf.validate({}) == []


@pytest.mark.parametrize(
    "key,value,says",
    [
        ("LEASE_SECONDS", -1, "greater than 0"),
        ("LEASE_SECONDS", 0, "greater than 0"),
        ("LEASE_SECONDS", "30", "a str, but it must be a number of seconds"),
        ("LEASE_SECONDS", True, "a bool, but it must be a number"),
        ("LEASE_SECONDS", float("nan"), "greater than 0"),
        ("LEASE_SECONDS", float("inf"), "at most 31536000"),
        ("LEASE_SECONDS", 10**30, "at most 31536000"),
        ("LEASE_SECONDS", None, "it must be a number"),
        ("HEARTBEAT_INTERVAL", 0, "greater than 0"),
        ("HEARTBEAT_INTERVAL", "x", "a str"),
        ("POLL_INTERVAL", -1, "greater than 0"),
        ("POLL_INTERVAL", "1", "a str"),
        ("RESCUE_INTERVAL", 0, "greater than 0"),
        ("SCHEDULER_INTERVAL", 0, "greater than 0"),
        ("PRUNE_INTERVAL", -5, "greater than 0"),
        ("METRICS_WINDOW", 0, "greater than 0"),
        ("HEALTH_MAX_DUE_AGE", 0, "greater than 0"),
        ("RETRY_BACKOFF", -0.5, "from 0 to"),
        ("RETRY_BACKOFF_MAX", -1, "from 0 to"),
        ("CANCEL_GRACE_SECONDS", -1, "from 0 to"),
        ("SCHEDULE_MISFIRE_GRACE", "60", "a str"),
        ("SCHEDULE_MAX_LATENESS", -1, "None (no bound) or"),
        ("TIMEOUT", 0, "None (no limit) or"),
        ("STATUS_URL_MAX_AGE", "x", "a str, but it must be None (valid for ever) or"),
        ("STATUS_URL_MAX_AGE", 0, "greater than 0"),
        ("CONCURRENCY", 0, "from 1 to 1000"),
        ("CONCURRENCY", "4", "a str, but it must be a whole number"),
        ("CONCURRENCY", 4.0, "a float, but it must be a whole number"),
        ("CONCURRENCY", 1001, "from 1 to 1000"),
        ("CONCURRENCY", 99999999999999999999, "from 1 to 1000"),
        ("MAX_ATTEMPTS", 0, "from 1 to"),
        ("MAX_ATTEMPTS", 2**31, "to 2147483647"),
        ("SCHEDULE_CATCH_UP_MAX", 0, "from 1 to 10000"),
        ("HEALTH_COUNT_LIMIT", -1, "from 1 to"),
        ("MAX_PAYLOAD_BYTES", "big", "a str, but it must be a whole number of bytes"),
        ("MAX_PAYLOAD_BYTES", 0, "from 1 to"),
        ("MAX_RETURN_VALUE_BYTES", -1, "from 1 to"),
        ("MAX_RETURN_VALUE_BYTES", 1.5, "a float"),
        ("MAX_JSON_DEPTH", 0, "from 1 to 200"),
        ("MAX_JSON_DEPTH", 1000, "from 1 to 200"),
        ("MAX_JSON_DEPTH", "64", "a str"),
        ("LISTEN", "False", "a str, but it must be True or False"),
        ("LISTEN", 0, "an int, but it must be True or False"),
        ("ASYNC_COMMIT", None, "True or False"),
        ("METRICS_PUBLIC", "False", "a str, but it must be True or False"),
        ("METRICS_PUBLIC", 1, "an int, but it must be True or False"),
        ("HTTP_TOKEN_HEADER", 123, "an int, but it must be an HTTP header name"),
        ("HTTP_TOKEN_HEADER", "", "it must be an HTTP header name"),
        ("HTTP_TOKEN_HEADER", "X Api Token", "it must be an HTTP header name"),
        ("HTTP_TOKEN_HEADER", "X_Api_Token", "it must be an HTTP header name"),
        ("LISTEN_DATABASE_URL", "", "a PostgreSQL connection URL"),
        ("LISTEN_DATABASE_URL", 5, "an int, but it must be None"),
        ("RETENTION_DAYS", {"SUCCESSFUL": -1}, "its SUCCESSFUL is -1: it must be None (kept for ever) or a number"),
        ("RETENTION_DAYS", {"FAILED": "90"}, "its FAILED is '90': a str"),
        ("RETENTION_DAYS", {"FAILED": 10**6}, "from 0 to 36500"),
        ("RETENTION_DAYS", {"RUNNING": 1}, "'RUNNING' is not a finished status (SUCCESSFUL, FAILED, CANCELLED)"),
        ("RETENTION_DAYS", {"FAILLED": 1}, "did you mean 'FAILED'?"),
        ("RETENTION_DAYS", {1: 1}, "1 is not a finished status"),
        ("RETENTION_DAYS", 14, "an int, but it must be a dict of {status: days}"),
        ("RETENTION_DAYS", None, "it must be a dict"),
        ("EVENT_RETENTION_DAYS", -1, "None (kept for ever) or a number of days from 0 to 36500"),
        ("SCHEDULES", ["nightly"], "a list, but it must be None (none declared) or a dict"),
        ("HTTP_TOKENS", ["t"], "a list, but it must be None (no tokens) or a dict of {token: username}"),
        ("HTTP_TOKENS", {"t" * 40: 5}, "a token's user is 5"),
        ("HTTP_TOKENS", {"t" * 40: ""}, "a token's user is ''"),
        ("HTTP_TOKENS", {b"t" * 40: "bot"}, "a token is a bytes"),
        ("HTTP_TOKENS", {"": "bot"}, "a token is an empty string"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_key_the_value_and_the_fix(key, value, says):
    [problem] = conf.validate({key: value})
    expected_id = {"SCHEDULES": "djjobs.E202", "HTTP_TOKENS": "djjobs.E104"}.get(key, "djjobs.E301")
    assert (problem.id, problem.key, problem.is_error) == (expected_id, key, True)
    assert problem.message.startswith(f"DJJOBS[{key!r}] is ")
    assert says in problem.message
    assert problem.hint.startswith(f"Set DJJOBS[{key!r}] to ") and "or remove it to use the default" in problem.hint
    if key not in ("HTTP_TOKENS", "LISTEN_DATABASE_URL"):
        assert repr(value)[:40] in problem.message
        assert repr(conf.DEFAULTS[key]) in problem.hint


@pytest.mark.parametrize(
    "key,value",
    [
        ("LEASE_SECONDS", 45),
        ("LEASE_SECONDS", 31536000),
        ("HEARTBEAT_INTERVAL", 0.1),
        ("POLL_INTERVAL", 0.01),
        ("RETRY_BACKOFF", 0),
        ("RETRY_BACKOFF_MAX", 0.0),
        ("CANCEL_GRACE_SECONDS", 0),
        ("SCHEDULE_MISFIRE_GRACE", 0),
        ("SCHEDULE_MAX_LATENESS", None),
        ("SCHEDULE_MAX_LATENESS", 0),
        ("TIMEOUT", None),
        ("TIMEOUT", 2.5),
        ("STATUS_URL_MAX_AGE", None),
        ("CONCURRENCY", 1),
        ("CONCURRENCY", 1000),
        ("MAX_ATTEMPTS", 1),
        ("MAX_ATTEMPTS", 2**31 - 1),
        ("MAX_PAYLOAD_BYTES", 1),
        ("MAX_RETURN_VALUE_BYTES", 10 * 1024 * 1024),
        ("MAX_JSON_DEPTH", 1),
        ("MAX_JSON_DEPTH", 200),
        ("LISTEN", False),
        ("ASYNC_COMMIT", False),
        ("METRICS_PUBLIC", True),
        ("LISTEN_DATABASE_URL", None),
        ("LISTEN_DATABASE_URL", "postgres://u:p@db:5432/app"),
        ("HTTP_TOKEN_HEADER", "X-Api-Token"),
        ("RETENTION_DAYS", {}),
        ("RETENTION_DAYS", {"SUCCESSFUL": 0, "FAILED": None, "CANCELLED": 0.5}),
        ("EVENT_RETENTION_DAYS", None),
        ("EVENT_RETENTION_DAYS", 36500),
        ("HTTP_TOKENS", None),
        ("HTTP_TOKENS", {"t" * 40: "api-bot"}),
        ("SCHEDULES", None),
        ("SCHEDULES", {"nightly": {"task": "app.tasks.f", "cron": "0 2 * * *"}}),
        ("SCHEDULE_CATCH_UP_MAX", 10000),
        ("HEALTH_COUNT_LIMIT", 1),
    ],
)
def test_a_good_value_passes(key, value):
    assert conf.validate({key: value}) == []


def test_a_secret_is_never_shown():
    token = "s3cret-" * 6
    for configured in ({"HTTP_TOKENS": {token: 7}}, {"HTTP_TOKENS": [token]}, {"LISTEN_DATABASE_URL": ""}):
        [problem] = conf.validate(configured)
        assert token not in problem.message + problem.hint
    [problem] = conf.validate({"LISTEN_DATABASE_URL": 12345})
    assert "12345" not in problem.message + problem.hint


@pytest.mark.parametrize(
    "key,closest",
    [
        ("LEASE_SECOND", "LEASE_SECONDS"),
        ("lease_seconds", "LEASE_SECONDS"),
        ("HEARTBEAT", "HEARTBEAT_INTERVAL"),
        ("METRIC_PUBLIC", "METRICS_PUBLIC"),
        ("MAX_RETURN_BYTES", "MAX_RETURN_VALUE_BYTES"),
    ],
)
def test_an_unknown_key_is_a_warning_naming_the_closest_key(key, closest):
    [problem] = conf.validate({key: 30})
    assert (problem.id, problem.key, problem.is_error) == ("djjobs.W301", key, False)
    assert f"unknown key {key!r}" in problem.message
    assert f"did you mean {closest!r}?" in problem.message
    assert problem.hint == f"Rename it to {closest!r}, or remove it."


@pytest.mark.parametrize("key", ["COMPLETELY_DIFFERENT", 42, ("a", "b")])
def test_an_unknown_key_without_a_close_match_points_to_the_reference(key):
    [problem] = conf.validate({key: 1})
    assert problem.id == "djjobs.W301" and "did you mean" not in problem.message
    assert "reference/settings.md" in problem.hint


@pytest.mark.parametrize("configured", [[], None, "x", 5, ("LEASE_SECONDS", 30), {"LEASE_SECONDS"}])
def test_djjobs_that_is_not_a_dict_is_one_error(configured):
    [problem] = conf.validate(configured)
    assert problem.id == "djjobs.E300" and problem.is_error
    assert problem.message.startswith(f"settings.DJJOBS is {configured!r}")
    assert "it must be a dict" in problem.message and "DJJOBS = {" in problem.hint


# -- HEARTBEAT_INTERVAL against LEASE_SECONDS ----------------------------------------------------


@pytest.mark.parametrize(
    "configured",
    [
        {"HEARTBEAT_INTERVAL": 30},
        {"HEARTBEAT_INTERVAL": 45},
        {"LEASE_SECONDS": 10},
        {"LEASE_SECONDS": 5, "HEARTBEAT_INTERVAL": 6},
    ],
)
def test_a_heartbeat_not_shorter_than_the_lease_is_an_error(configured):
    [problem] = conf.validate(configured)
    assert (problem.id, problem.key) == ("djjobs.E302", "HEARTBEAT_INTERVAL")
    assert "is not shorter than DJJOBS['LEASE_SECONDS']" in problem.message
    assert "run again while it still runs" in problem.message
    assert "at most a third of DJJOBS['LEASE_SECONDS']" in problem.hint


def test_a_heartbeat_over_half_the_lease_is_a_warning():
    [problem] = conf.validate({"LEASE_SECONDS": 30, "HEARTBEAT_INTERVAL": 16})
    assert (problem.id, problem.is_error) == ("djjobs.W302", False)
    assert "more than half of DJJOBS['LEASE_SECONDS'] (30)" in problem.message
    assert "e.g. 10 for 30" in problem.hint
    assert conf.validate({"LEASE_SECONDS": 30, "HEARTBEAT_INTERVAL": 15}) == []


def test_an_invalid_heartbeat_or_lease_is_reported_once():
    assert ids({"LEASE_SECONDS": -1, "HEARTBEAT_INTERVAL": 10}) == ["djjobs.E301"]
    assert ids({"HEARTBEAT_INTERVAL": "x"}) == ["djjobs.E301"]


def test_every_problem_is_reported():
    configured = {"LEASE_SECOND": 30, "CONCURRENCY": 0, "METRICS_PUBLIC": "False", "POLL_INTERVAL": 1}
    assert ids(configured) == ["djjobs.W301", "djjobs.E301", "djjobs.E301"]


# -- conf.get and the check, reading settings.DJJOBS ---------------------------------------------


@pytest.mark.parametrize("configured", [[], None, "x", 5])
def test_get_falls_back_to_the_defaults_when_djjobs_is_not_a_dict(settings, configured):
    settings.DJJOBS = configured
    assert conf.get("LEASE_SECONDS") == conf.DEFAULTS["LEASE_SECONDS"]
    assert conf.get("RETENTION_DAYS") == conf.DEFAULTS["RETENTION_DAYS"]


def test_get_reads_the_setting_or_its_default(settings):
    settings.DJJOBS = {"LEASE_SECONDS": 12.0}
    assert (conf.get("LEASE_SECONDS"), conf.get("POLL_INTERVAL")) == (12.0, 1.0)
    del settings.DJJOBS
    assert conf.get("LEASE_SECONDS") == 30.0
    with pytest.raises(KeyError):
        conf.get("NOT_A_SETTING")


def test_the_check_reports_settings_but_leaves_tokens_and_schedules_to_their_own_checks(settings):
    settings.DJJOBS = {"LEASE_SECOND": 1, "METRICS_PUBLIC": "False", "HTTP_TOKENS": [], "SCHEDULES": []}
    messages = checks.check_settings()
    assert [(m.id, m.level >= 40) for m in messages] == [("djjobs.W301", False), ("djjobs.E301", True)]
    assert messages[1].hint.startswith("Set DJJOBS['METRICS_PUBLIC'] to True or False")
    assert [m.id for m in checks.check_http_tokens()] == ["djjobs.E104"]
    settings.DJJOBS = []
    assert [m.id for m in checks.check_settings()] == ["djjobs.E300"]
    assert checks.check_http_tokens() == []  # the defaults


# -- the worker never renews leases slower than they expire, even unchecked ----------------------


@pytest.mark.parametrize("interval", [30.0, 60, 0, -1, "10", None, float("nan")])
def test_the_worker_clamps_a_heartbeat_that_is_not_shorter_than_the_lease(settings, caplog, interval):
    from djjobs.worker.runner import Runner

    settings.DJJOBS = {"LEASE_SECONDS": 30.0, "HEARTBEAT_INTERVAL": interval}
    worker = Runner(concurrency=1, worker_id="clamp")
    waits = []
    worker.stopping.wait = lambda timeout: waits.append(timeout) or True  # stop at once
    with caplog.at_level(logging.WARNING, logger="djjobs"):
        worker._heartbeat_loop()
    assert waits == [10.0]
    assert "renewing leases every 10.0 s instead" in caplog.text


def test_the_worker_keeps_a_valid_heartbeat(settings, caplog):
    from djjobs.worker.runner import Runner

    settings.DJJOBS = {"LEASE_SECONDS": 30.0, "HEARTBEAT_INTERVAL": 20}
    worker = Runner(concurrency=1, worker_id="clamp")
    waits = []
    worker.stopping.wait = lambda timeout: waits.append(timeout) or True
    worker._heartbeat_loop()
    assert waits == [20] and "instead" not in caplog.text


# -- the documentation lists every key and every check id -----------------------------------------


def test_the_docs_document_every_setting_with_its_valid_values():
    section = (DOCS / "settings.md").read_text()
    rows = {}
    for line in section.splitlines():
        found = re.match(r"\| `([A-Z_]+)` \| (.*?) \| (.*?) \| (.*) \|$", line)
        if found:
            rows[found[1]] = found.groups()[1:]
    assert set(rows) == set(conf.RULES)
    for key, (_default, valid, meaning) in rows.items():
        assert valid and meaning, key
    default, _, meaning = rows["MAX_RETURN_VALUE_BYTES"]
    assert default == "`1048576`" and "InvalidReturnValue" in meaning
    assert rows["MAX_JSON_DEPTH"][:2] == ("`64`", "whole, 1..200")
    assert rows["CONCURRENCY"][1] == f"whole, 1..{conf.CONCURRENCY_MAX}"


def test_the_docs_list_every_system_check_id():
    source = "\n".join(p.read_text() for p in Path(checks.__file__).parent.rglob("*.py"))
    declared = set(re.findall(r'"(djjobs\.[EW]\d{3})"', source))
    assert {"djjobs.E300", "djjobs.E301", "djjobs.E302", "djjobs.W301", "djjobs.W302"} <= declared
    section = (DOCS / "checks.md").read_text()
    documented = set(re.findall(r"^\| `(djjobs\.[EW]\d{3})` \|", section, re.M))
    assert documented == declared
