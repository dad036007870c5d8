"""A seeded fuzz of hostile argument and return values (issue 13).

``Hostile(seed)`` makes values that are deep (near and past DJJOBS['MAX_JSON_DEPTH'], up to
100,000 levels), wide (thousands of items or keys), carry NUL characters and lone surrogates
in values and keys, huge integers (10**400: stored and read back equal on both databases;
more than Python's 4,300 digits cannot be written as JSON at all), extreme floats, odd keys
("", "\\n", 5,000 characters, unicode, "__proto__"), things that are not JSON (tuples, sets,
bytes, NaN, integer keys), and mixes of these. An oracle (``refusal``) says, for each value,
whether djjobs' rules refuse it.

For every value, through ``enqueue()``, ``enqueue_many()`` and the HTTP endpoint: the
oracle's refusals are a clear InvalidTask / JSON 400 and no row; everything else is a row
whose args read back equal to what was sent. Then a worker round trip: accepted values through
an echo task, and hostile return values (a task returning ast.literal_eval of the value's
repr), run together by ``run_workers --burst``: every job ends SUCCESSFUL with its return value
equal to the value, or FAILED with InvalidReturnValue where the oracle refuses it; none other.

"Equal" is JSON's equality, as the database keeps numbers: tuples read back as lists, and on
PostgreSQL a float of 1e16 or more (written with an exponent, 1e+300) reads back as the integer
with the same decimal digits (jsonb stores numbers as numeric), so float(read) == sent.

Runtime: COUNT (2,000) values, about 10 s per database for the three paths; the round trip
takes ROUND_TRIP (300) echo jobs and as many return values, a few seconds more.
"""

import ast
import functools
import json
import math
import random
import re
import time

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse

from djjobs import conf
from djjobs.compat import InvalidTask
from djjobs.models import Job
from tests.testapp import tasks

SEED = 20_251_300  # fixed: a failure names the value's index, and a re-run makes the same values
COUNT = 2_000
ROUND_TRIP = 300

# What the message of each refusal says (the enqueue's, or the HTTP endpoint's on the body).
MESSAGES = {
    "NUL character": ("NUL character",),
    "lone surrogate": ("lone surrogate",),
    "nested more than": ("nested more than", "nested too deeply"),
    "JSON-serialisable": ("JSON-serialisable", "is not a JSON number", "is out of range"),
    "bytes encoded": ("bytes encoded",),
}


# -- the generator ---------------------------------------------------------------------------------


class Opaque:
    """Not JSON."""

    def __repr__(self):
        return "Opaque()"


ODD_KEYS = [
    "",
    " ",
    "\n",
    "\t",
    "\r\n",
    "__proto__",
    "constructor",
    "$where",
    "a.b",
    'a"b',
    "\\",
    "\\u0000",
    "null",
    "true",
    "1",
    "ключ",
    "🙂",
    "e\u0301",
    "\u202eevil",
    "\u2028",
    "\ufeff",
    "\uffff",
    "\U0010ffff",
]
FLOATS = [
    0.0,
    -0.0,
    0.1,
    1.5,
    -2.75,
    1e-7,
    2.5e-10,
    5e-324,
    1e15,
    1e16,
    1e22,
    1.2345678901234567e30,
    1e300,
    -1e300,
    1.7976931348623157e308,
    2.2250738585072014e-308,
]
INTS = [0, -1, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**400, -(10**399), 10**4299]
PIECES = [
    "a",
    "Z",
    "0",
    " ",
    "'",
    '"',
    "\\",
    "/",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\t",
    "\n",
    "\r",
    "\x0b",
    "\x01",
    "\x1f",
    "\x7f",
    "é",
    "ß",
    "中文",
    "🙂",
    "e\u0301",
    "\u202e",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\uffff",
    "\U0010ffff",
    "\\u0000",
    "\\ud800",
    "%00",
    "\xa0",
]


class Hostile:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def values(self, count: int) -> list:
        kinds = [
            (self.scalar, 20),
            (self.text, 20),
            (self.nested, 20),
            (self.deep, 12),
            (self.wide, 6),
            (self.odd_keys, 10),
            (self.not_json, 8),
            (self.mixed, 12),
        ]
        makers = [maker for maker, weight in kinds for _ in range(weight)]
        values = [self.rng.choice(makers)() for _ in range(count)]
        # A few rare ones, always in: the largest payloads and the deepest value.
        limit = conf.DEFAULTS["MAX_PAYLOAD_BYTES"]
        values[7] = "x" * (limit - 100)  # just fits with the args list and kwargs around it
        values[8] = "x" * limit  # just does not
        values[9] = "é" * (limit // 2)  # fewer characters than the limit, more bytes
        values[10] = _deep_list(100_000)
        values[11] = _deep_list(63)  # the deepest an argument may be (the args list is level 1)
        values[12] = _deep_list(64)
        return values

    def text(self, nul=0.04, surrogate=0.04) -> str:
        rng = self.rng
        parts = [rng.choice(PIECES) for _ in range(rng.choice([0, 1, 3, 10, 40]))]
        if rng.random() < nul:
            parts.insert(rng.randint(0, len(parts)), "\x00")
        if rng.random() < surrogate:
            parts.insert(rng.randint(0, len(parts)), chr(rng.randint(0xD800, 0xDFFF)))
        return "".join(parts)

    def key(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.3:
            return rng.choice(ODD_KEYS)
        if roll < 0.33:
            return "k" * rng.choice([256, 5000])
        return self.text(nul=0.03, surrogate=0.03)

    def scalar(self):
        rng = self.rng
        return rng.choice(
            [
                lambda: rng.randint(-1000, 1000),
                lambda: rng.choice(INTS),
                lambda: rng.choice(FLOATS),
                lambda: rng.uniform(-1, 1) * 10 ** rng.randint(-300, 300),
                lambda: rng.random() < 0.5,
                lambda: None,
                self.text,
            ]
        )()

    def nested(self, depth=None):
        rng = self.rng
        depth = rng.choice([1, 2, 3, 5, 10, 30]) if depth is None else depth
        value = self.scalar()
        for _ in range(depth):  # iterative: any depth
            siblings = [self.scalar() for _ in range(rng.randint(0, 2))]
            if rng.random() < 0.5:
                siblings.insert(rng.randint(0, len(siblings)), value)
                value = siblings
            else:
                value = {self.key(): s for s in siblings} | {self.key(): value}
        return value

    def deep(self):
        return self.nested(self.rng.choice([60, 62, 63, 63, 64, 64, 65, 66, 70, 100, 500, 900, 1000, 5000]))

    def wide(self):
        rng = self.rng
        n = rng.choice([100, 1000, 3000])
        if rng.random() < 0.5:
            return [self.scalar() for _ in range(n)]
        return {f"{self.key()}{i}": self.scalar() for i in range(n)}

    def odd_keys(self):
        return {self.key(): self.scalar() for _ in range(self.rng.randint(1, 6))}

    def not_json(self):
        rng = self.rng
        return rng.choice(
            [
                lambda: (1, "two", [3]),
                lambda: {"t": (1, 2)},
                lambda: {1, 2},
                lambda: b"bytes",
                lambda: Opaque(),
                lambda: math.nan,
                lambda: [math.inf],
                lambda: {"x": -math.inf},
                lambda: {1: "int key"},
                lambda: {"ok": {2: "nested int key"}},
                lambda: 10**4300,
                lambda: [{"deep": [10**5000]}],
                lambda: {(1, 2): "tuple key"},
            ]
        )()

    def mixed(self):
        rng = self.rng
        return [
            rng.choice([self.scalar, self.text, self.nested, self.odd_keys, self.not_json])()
            for _ in range(rng.randint(1, 5))
        ]


def _deep_list(levels, leaf=1):
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


# -- the oracle ---------------------------------------------------------------------------------


_SURROGATE = re.compile("[\ud800-\udfff]")


def refusal(value, *, root_level=1, limit=None) -> set[str]:
    """Every reason djjobs must refuse ``value`` (empty: none). ``root_level`` is the level of
    ``value`` itself: 1 for a return value, and an argument sits in the args list (see
    argument_refusal). ``limit``: the largest JSON encoding in bytes. Iterative."""
    max_depth = conf.get("MAX_JSON_DEPTH")
    reasons, stack = set(), [(value, root_level)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (list, tuple, dict)) and level > max_depth:
            reasons.add("nested more than")
            continue  # (a 100,000-deep value is not walked to its bottom)
        if isinstance(node, str):
            if "\x00" in node:
                reasons.add("NUL character")
            if _SURROGATE.search(node):
                reasons.add("lone surrogate")
        elif isinstance(node, bool) or node is None:
            pass
        elif isinstance(node, int):
            if abs(node) >= 10**4300:
                reasons.add("JSON-serialisable")  # Python writes at most 4,300 digits
        elif isinstance(node, float):
            if not math.isfinite(node):
                reasons.add("JSON-serialisable")
        elif isinstance(node, (list, tuple)):
            stack.extend((item, level + 1) for item in node)
        elif isinstance(node, dict):
            for key, item in node.items():
                if not isinstance(key, str):
                    reasons.add("JSON-serialisable")
                stack.append((key, level))
                stack.append((item, level + 1))
        else:
            reasons.add("JSON-serialisable")
    if not reasons and limit is not None:
        if len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()) > limit:
            reasons.add("bytes encoded")
    return reasons


def argument_refusal(value) -> set[str]:
    """refusal() of ``value`` as the one argument of a call: in the args list (level 1), and
    measured with it and the empty kwargs, as JobsBackend measures."""
    reasons = refusal([value], root_level=1)
    if not reasons:
        size = len(json.dumps([value], ensure_ascii=False, separators=(",", ":")).encode()) + 2 + 2
        if size > conf.get("MAX_PAYLOAD_BYTES"):
            reasons.add("bytes encoded")
    return reasons


def as_json(value, key=lambda k: k):
    """``value`` as JSON reads it back: tuples become lists (Django's TaskResult does the same);
    ``key`` maps dict keys. Iterative: any depth."""
    root = [None]
    stack = [(value, root, 0)]
    while stack:
        node, parent, slot = stack.pop()
        if isinstance(node, (list, tuple)):
            copy = [None] * len(node)
            stack.extend((item, copy, i) for i, item in enumerate(node))
        elif isinstance(node, dict):
            copy = dict.fromkeys(key(k) for k in node)
            stack.extend((item, copy, key(k)) for k, item in node.items())
        else:
            copy = node
        parent[slot] = copy
    return root[0]


def same(sent, read) -> bool:
    """JSON equality as the database keeps numbers (see the module's docstring)."""
    postgres = connection.vendor == "postgresql"
    stack = [(sent, read)]
    while stack:
        a, b = stack.pop()
        if isinstance(a, bool) or a is None or isinstance(a, str):
            if type(a) is not type(b) or a != b:
                return False
        elif isinstance(a, int):
            if type(b) is not int or a != b:
                return False
        elif isinstance(a, float):
            if type(b) is float:
                if a != b:
                    return False
            elif not (postgres and type(b) is int and abs(a) >= 1e16 and float(b) == a):
                return False
        elif isinstance(a, (list, tuple)):
            if not isinstance(b, list) or len(a) != len(b):
                return False
            stack.extend(zip(a, b))
        elif isinstance(a, dict):
            if not isinstance(b, dict) or a.keys() != b.keys():
                return False
            stack.extend((a[k], b[k]) for k in a)
        else:
            return False
    return True


# -- the HTTP body: written without recursion, so that any depth can be sent ----------------------------


class NoJson(Exception):
    """The value has no JSON spelling (bytes, a set, an object, an int over 4,300 digits)."""


def body_text(value) -> str:
    """``{"args": [value]}`` as the JSON a client would send (NUL as \\u0000, a lone surrogate
    as \\ud800, NaN as NaN, a tuple as an array, an int key as a string)."""
    try:
        return '{"args": [' + json.dumps(value) + "]}"
    except (TypeError, ValueError):
        raise NoJson from None
    except RecursionError:
        return _deep_body_text(value)


def _deep_body_text(value) -> str:
    """body_text() for a value deeper than json.dumps goes."""
    out = ['{"args": [']
    stack = [("raw", "]}"), ("value", value)]  # popped from the end
    while stack:
        kind, node = stack.pop()
        if kind == "raw":
            out.append(node)
        elif isinstance(node, (str, bool)) or node is None:
            out.append(json.dumps(node))
        elif isinstance(node, int):
            try:
                out.append(str(node))
            except ValueError:
                raise NoJson from None
        elif isinstance(node, float):
            out.append(json.dumps(node))  # NaN, Infinity, -Infinity: what a careless client sends
        elif isinstance(node, (list, tuple)):
            pieces = [("raw", "[")]
            for i, item in enumerate(node):
                pieces += [("raw", ",")] * (i > 0) + [("value", item)]
            pieces.append(("raw", "]"))
            stack.extend(reversed(pieces))
        elif isinstance(node, dict):
            pieces = [("raw", "{")]
            for i, (key, item) in enumerate(node.items()):
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    raise NoJson
                pieces += [("raw", ",")] * (i > 0) + [("raw", json.dumps(str(key)) + ":"), ("value", item)]
            pieces.append(("raw", "}"))
            stack.extend(reversed(pieces))
        else:
            raise NoJson
    return "".join(out)


def as_sent(value, body: str):
    """What the server decodes from ``body`` (body_text(value)): tuples are arrays, int keys strings."""
    try:
        return json.loads(body)["args"][0]
    except RecursionError:
        return as_json(value, key=str)


def depth(value) -> int:
    """Levels of lists and dicts (a scalar is 0); iterative."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (list, tuple, dict)):
            level += 1
            deepest = max(deepest, level)
            stack.extend((item, level) for item in (node.values() if isinstance(node, dict) else node))
    return deepest


VALUES = Hostile(SEED).values(COUNT)


@functools.cache
def verdicts() -> list[set[str]]:
    """argument_refusal() of each of VALUES, worked out once."""
    return [argument_refusal(v) for v in VALUES]


def test_the_generator_makes_every_kind_of_hostile_value():
    again = Hostile(SEED).values(100)  # the same seed, the same values
    assert [repr_or_empty(v)[:200] for v in again] == [repr_or_empty(v)[:200] for v in VALUES[:100]]
    counts = {reason: sum(reason in v for v in verdicts()) for reason in MESSAGES}
    accepted = sum(not v for v in verdicts())
    assert COUNT // 3 < accepted < COUNT * 0.9, (accepted, counts)  # neither side is everything
    for n in counts.values():
        assert n >= 2, counts
    assert any(depth(v) >= 100_000 for v in VALUES) and any(len(v) >= 3000 for v in VALUES if isinstance(v, list))
    assert any(isinstance(v, int) and abs(v) >= 10**400 for v in VALUES)


# -- enqueue(), enqueue_many(), the HTTP endpoint ----------------------------------------------------


def _check_refused(message: str, reasons: set, index: int) -> None:
    """The message says one of the reasons the oracle found (which one comes first is djjobs')."""
    assert any(text in message for reason in reasons for text in MESSAGES[reason]), (index, reasons, message)


@pytest.mark.django_db
def test_enqueue_and_enqueue_many_refuse_or_store_each_value_exactly():
    started = time.perf_counter()
    accepted: dict[str, tuple[int, object]] = {}  # job id -> (index, what it should read back as)
    for index, (value, reasons) in enumerate(zip(VALUES, verdicts())):
        for enqueue in (lambda v: tasks.echo.enqueue(v), lambda v: tasks.echo.enqueue_many([(v,)])[0]):
            try:
                result = enqueue(value)
            except InvalidTask as exc:
                assert reasons, (index, repr_or_empty(value)[:300], str(exc))  # noqa: PT017 - refused or stored: both checked
                _check_refused(str(exc), reasons, index)
            else:
                assert not reasons, (index, repr_or_empty(value)[:300], "accepted, but", reasons)
                accepted[result.id] = (index, value)
    # The accepted values once more, in one enqueue_many: COPY on PostgreSQL.
    good = [v for v, reasons in zip(VALUES, verdicts()) if not reasons]
    for result, value in zip(tasks.echo.enqueue_many([(v,) for v in good]), good):
        accepted[result.id] = (-1, value)
    assert Job.objects.count() == len(accepted)  # no refused value left a row
    for job_id, args in Job.objects.values_list("id", "args").iterator():
        index, value = accepted[str(job_id)]
        assert same([value], args), (index, repr_or_empty(value)[:300], repr(args)[:300])
    assert time.perf_counter() - started < 30


@pytest.mark.django_db
def test_the_http_endpoint_refuses_or_stores_each_value_exactly():
    """The view itself, with a RequestFactory request of a logged-in user: the middleware's
    session and user queries would be most of the time (the full stack is test_endpoints')."""
    from djjobs.http import views

    user = User.objects.create_user("fuzzer", password="pw")
    user.user_permissions.set(Permission.objects.filter(codename="enqueue_job"))
    factory = RequestFactory()
    url = reverse("djjobs:enqueue", args=[tasks.http_echo.module_path])
    started, sent_count, accepted = time.perf_counter(), 0, {}
    for index, value in enumerate(VALUES):
        try:
            body = body_text(value)
        except NoJson:
            continue
        sent = as_sent(value, body)
        reasons = argument_refusal(sent)
        request = factory.post(url, body.encode(), content_type="application/json")
        request.user, request._dont_enforce_csrf_checks = user, True
        response = views.enqueue(request, tasks.http_echo.module_path)
        sent_count += 1
        assert response["Content-Type"] == "application/json", (index, response.status_code)
        if response.status_code == 413:  # a body over DATA_UPLOAD_MAX_MEMORY_SIZE: not even read
            assert len(body.encode()) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE and reasons, index
        elif response.status_code == 400:
            error = json.loads(response.content)["error"]
            assert reasons, (index, repr_or_empty(value)[:300], error)
            _check_refused(error, reasons, index)
        else:
            assert response.status_code == 202 and not reasons, (index, repr_or_empty(value)[:300], reasons)
            accepted[json.loads(response.content)["id"]] = (index, sent)
    assert sent_count > COUNT * 0.9
    assert Job.objects.count() == len(accepted)
    for job_id, args in Job.objects.values_list("id", "args").iterator():
        index, sent = accepted[str(job_id)]
        assert same([sent], args), (index, repr(sent)[:300], repr(args)[:300])
    assert time.perf_counter() - started < 30


# -- a worker round trip -------------------------------------------------------------------------------


def _round_trip_values():
    """Accepted arguments for the echo task; and, as return values, values of every kind whose
    repr ast.literal_eval can read back (NUL, surrogates, tuples, sets, int keys, 65+ levels)."""
    echo, returns = [], []
    for value, reasons in zip(VALUES, verdicts()):
        if not reasons and len(echo) < ROUND_TRIP:
            echo.append(value)
        text = repr_or_empty(value) if depth(value) <= 100 else ""
        if len(returns) < ROUND_TRIP and 0 < len(text) < 200_000 and _literal_ok(text):
            returns.append(value)
    return echo, returns


def repr_or_empty(value) -> str:
    try:
        return repr(value)
    except (ValueError, RecursionError):  # an int over 4,300 digits; a value deeper than repr goes
        return ""


def _literal_ok(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        return False  # Opaque(), nan, inf
    return True


@pytest.mark.django_db(transaction=True)
def test_worker_round_trip_every_job_ends_clearly_and_none_harms_another():
    """WORKER SIDE: a failure here (a job left RUNNING/READY, or one harmed by another's bad
    return value in a batched completion) is the worker's, not the input checks'."""
    echo_values, return_values = _round_trip_values()
    assert len(echo_values) == ROUND_TRIP and len(return_values) >= ROUND_TRIP // 2
    limit = conf.get("MAX_RETURN_VALUE_BYTES")
    expected = {}
    # One transaction for all: the worker claims and completes them in batches, good and bad mixed.
    from django.db import transaction

    with transaction.atomic():
        for result, value in zip(tasks.echo.enqueue_many([(v,) for v in echo_values]), echo_values):
            expected[result.id] = ("echo", value, set())
        mixed = tasks.literal.enqueue_many([(repr(v),) for v in return_values])
        for result, value in zip(mixed, return_values):
            expected[result.id] = ("literal", value, refusal(value, root_level=1, limit=limit))
    started = time.perf_counter()
    call_command("run_workers", "--burst", "--concurrency", "4", verbosity=0)
    elapsed = time.perf_counter() - started
    problems = []
    for job in Job.objects.all().only("id", "status", "return_value", "errors"):
        kind, value, reason = expected[str(job.id)]
        if not reason:
            if job.status != "SUCCESSFUL" or not same(as_json(value), job.return_value):
                problems.append((kind, repr(value)[:200], job.status, job.errors[-1:] if job.errors else None))
        else:
            last = job.errors[-1] if job.errors else {}
            if job.status != "FAILED" or last.get("exception_class_path") != "djjobs.exceptions.InvalidReturnValue":
                problems.append((kind, repr(value)[:200], reason, job.status, last.get("exception_class_path")))
    assert not problems, f"{len(problems)} of {len(expected)} jobs: {problems[:5]}"
    assert sum(1 for _kind, _value, reason in expected.values() if reason) >= 10  # hostile return values were in
    assert elapsed < 60
