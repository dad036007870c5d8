"""Every code example in the documentation (docs/**/*.md and README.md) is checked by a test.

The convention, described in docs/development.md, is an HTML comment on the line before a
fenced block (MyST and GitHub render nothing for it):

- no marker: a ``python`` block is compiled; a block in any language whose lines call
  ``manage.py`` has its command names and options checked against the commands' argparse
  parsers, and ``make`` lines against the Makefile's targets; ``json`` blocks must parse,
  ``yaml`` and ``ini`` blocks too;
- ``<!-- test: run -->`` (or ``<!-- test: run module=shop.tasks -->``): the ``python`` block is
  also written to a module (of that name) and imported, on the test database, so tasks it
  declares import back by their dotted path. A page's run blocks are imported in page order
  in one test, so a later block can import an earlier one's module (``shop.models.Order`` is
  there already: the test app's ``TrackedOrder``, with ``status``, ``total``, ``data``,
  ``note``); ``assert`` statements
  state the behaviour the page promises, and the Django ``TestCase`` classes a block defines
  are run;
- ``<!-- test: settings -->``: the ``python`` block is a settings excerpt: it is executed
  (``BASE_DIR`` is defined), and its ``DJJOBS`` must pass djjobs' settings checks and its
  ``TASKS`` must name djjobs' backend;
- ``<!-- test: skip why -->``: compiled only, and the reason says why it cannot run here.

The modules and the registrations an example makes (declared tasks, triggers, receivers of the
task signals) are undone
after its page, so examples do not leak into the other tests.
"""

import configparser
import importlib
import io
import json
import re
import sys
import unittest
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import find_commands, get_commands, load_command_class
from django.test import SimpleTestCase

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
PAGES = [p for p in PAGES if "_build" not in p.parts]

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<info>[^`]*)$")
MARKER = re.compile(r"^\s*<!--\s*test:\s*(?P<mode>run|settings|skip)\b\s*(?P<reason>.*?)\s*-->\s*$")
MANAGE = re.compile(r"(?:manage\.py|django-admin)\s+(?P<rest>.*)")
OPTION = re.compile(r"(?<![\w/%.-])(--?[A-Za-z][\w-]*)")
MAKE = re.compile(r"^\s*(?:[A-Z_]+=\S+\s+)*make\s+(?P<target>[\w-]+)")


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    mode: str  # "", "run", "settings" or "skip"
    reason: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def module(self) -> str:
        stem = re.sub(r"\W", "_", str(self.page.relative_to(ROOT).with_suffix("")))
        return f"docs_example_{stem}_{self.line}"


def blocks_of(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        info = opening["info"].strip()
        language = info.removeprefix("{code-block}").strip().split(" ")[0] if info else ""
        end = i + 1
        while end < len(lines) and not re.match(rf"^\s*{fence}`*\s*$", lines[end]):
            end += 1
        body = "\n".join(line[indent:] if line[:indent].isspace() else line for line in lines[i + 1 : end])
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(previous)
        found.append(
            Block(
                page, i + 1, language, body + "\n", marker["mode"] if marker else "", marker["reason"] if marker else ""
            )
        )
        i = end + 1
    return found


BLOCKS = [block for page in PAGES for block in blocks_of(page)]
PYTHON = [b for b in BLOCKS if b.language == "python"]


def test_the_examples_are_found():
    """The extraction sees the pages' blocks (a broken regex would make every test below pass)."""
    assert len(PYTHON) >= 25
    assert sum(b.mode == "run" for b in PYTHON) >= 12
    assert all(b.mode != "skip" or b.reason for b in BLOCKS), "a skipped example says why"
    assert all(b.language == "python" for b in BLOCKS if b.mode), "markers are for python blocks"


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: b.name)
def test_python_example_compiles(block):
    compile(block.code, block.name, "exec")


# -- examples that run ---------------------------------------------------------------------------


RUN_PAGES = sorted({b.page for b in PYTHON if b.mode == "run"})


def module_name(block: Block) -> str:
    """``<!-- test: run module=shop.tasks -->`` names the module; otherwise one is made up."""
    match = re.search(r"\bmodule=([\w.]+)", block.reason)
    return match[1] if match else block.module


SHOP_MODELS = "from tests.testapp.models import TrackedOrder as Order  # status, total, data, note\n"


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A directory on sys.path for example modules; the modules and the registrations they
    make (declared tasks, triggers, task signal receivers) are undone after, so examples do
    not leak into other tests."""
    from djjobs import compat, registry, triggers

    monkeypatch.syspath_prepend(str(tmp_path))
    # The model the pages' examples use: shop.models.Order, the test app's TrackedOrder.
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").touch()
    (tmp_path / "shop" / "models.py").write_text(SHOP_MODELS)
    declared, registered = dict(registry._declared), {t.name for t in triggers.registered()}
    signals = [compat.task_enqueued, compat.task_started, compat.task_finished]
    receivers = [list(signal.receivers) for signal in signals]
    yield tmp_path
    for signal, before in zip(signals, receivers, strict=True):
        with signal.lock:
            signal.receivers = before
            signal.sender_receivers_cache.clear()
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]
    registry._declared.clear()
    registry._declared.update(declared)
    registry.resolve_task.cache_clear()
    for trigger in triggers.registered():
        if trigger.name not in registered:
            triggers.unregister(trigger)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("page", RUN_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_examples_run(page, sandbox):
    """A page's run blocks are imported in page order, each as its module (packages made as
    needed), so a later block can import an earlier one; the Django TestCase classes a block
    defines are then run (each test isolated by its own transaction, as under manage.py test)."""
    for block in [b for b in blocks_of(page) if b.mode == "run"]:
        name = module_name(block)
        path = sandbox.joinpath(*name.split("."))
        for package in list(path.parents)[: name.count(".")]:
            package.mkdir(exist_ok=True)
            (package / "__init__.py").touch()
        path.with_suffix(".py").write_text(block.code)
        importlib.invalidate_caches()
        module = importlib.import_module(name)
        cases = [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, SimpleTestCase) and obj.__module__ == name
        ]
        if cases:
            suite = unittest.TestSuite(unittest.defaultTestLoader.loadTestsFromTestCase(case) for case in cases)
            outcome = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(suite)
            problems = [f"{test}: {trace}" for test, trace in outcome.failures + outcome.errors]
            assert outcome.testsRun and not problems, f"{block.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("block", [b for b in PYTHON if b.mode == "settings"], ids=lambda b: b.name)
def test_settings_example_is_valid(block):
    from djjobs import conf

    namespace = {"BASE_DIR": Path("/srv/app")}
    exec(compile(block.code, block.name, "exec"), namespace)
    assert "DJJOBS" in namespace or "TASKS" in namespace or "DATABASES" in namespace, block.name
    if "DJJOBS" in namespace:
        problems = conf.validate(namespace["DJJOBS"])
        assert not problems, [p.message for p in problems]
    for alias, backend in namespace.get("TASKS", {}).items():
        assert backend["BACKEND"] == "djjobs.backend.JobsBackend", alias
    for database in namespace.get("DATABASES", {}).values():
        if database["ENGINE"] == "django.db.backends.sqlite3":
            # What system checks djjobs.W001 and W002 ask for.
            assert database["OPTIONS"]["timeout"] > 0 and database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


# -- commands ------------------------------------------------------------------------------------


def command_lines(block: Block) -> list[str]:
    """The manage.py (and django-admin) invocations of a block, continuation lines joined."""
    calls, current = [], None
    for raw in block.code.splitlines():
        # Comments dropped; quotes, commas and brackets of a YAML or JSON list are spaces.
        line = re.sub(r"[\"',\[\]]", " ", re.sub(r"\s#.*$", "", raw)).rstrip()
        if MANAGE.search(line):
            current = line.rstrip("\\")
            calls.append(current)
        elif current is not None and line[:1].isspace() and line.strip():
            calls[-1] += " " + line.strip().rstrip("\\")
        else:
            current = None
    return calls


INVOCATIONS = [(block, call) for block in BLOCKS for call in command_lines(block)]


def test_commands_are_found():
    assert len(INVOCATIONS) >= 10
    assert {MANAGE.search(call)["rest"].split()[0] for _, call in INVOCATIONS} >= {
        "run_workers",
        "schedules",
        "prune_jobs",
        "migrate",
    }


def all_commands() -> dict[str, str]:
    """The commands of the test settings' apps, and those of contrib apps a project adds
    (collectstatic: the test settings have no staticfiles)."""
    import django.contrib.staticfiles

    commands = dict(get_commands())
    for name in find_commands(str(Path(django.contrib.staticfiles.__file__).parent / "management")):
        commands.setdefault(name, "django.contrib.staticfiles")
    return commands


def command_problems(call: str) -> list[str]:
    """What is wrong with one manage.py invocation: an unknown command, or options it lacks."""
    rest = MANAGE.search(call)["rest"]
    name = rest.split()[0]
    commands = all_commands()
    if name not in commands:
        return [f"no management command {name!r}"]
    parser = load_command_class(commands[name], name).create_parser("manage.py", name)
    known = {flag for action in parser._actions for flag in action.option_strings}
    return [f"{name} has no option {flag}" for flag in OPTION.findall(rest[len(name) :]) if flag not in known]


def test_command_check_finds_mistakes():
    assert command_problems("python manage.py run_workers --queues a,b -v 2 --burst") == []
    assert command_problems("python manage.py run_worker") == ["no management command 'run_worker'"]
    assert command_problems("manage.py schedules --add x [--timezone Z]") == ["schedules has no option --timezone"]


@pytest.mark.parametrize(("block", "call"), INVOCATIONS, ids=[f"{b.name} {c.strip()[:60]}" for b, c in INVOCATIONS])
def test_command_and_options_exist(block, call):
    assert not command_problems(call), f"{block.name}: {call.strip()}"


def test_make_targets_exist():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    used = {
        (block.name, match["target"])
        for block in BLOCKS
        if block.language in ("sh", "bash", "console", "")
        for match in map(MAKE.match, block.code.splitlines())
        if match
    }
    assert {target for _, target in used} >= {"demo", "test", "docs"}
    missing = sorted(f"{name}: make {target}" for name, target in used if target not in targets)
    assert not missing, missing


# -- data formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language == "json"], ids=lambda b: b.name)
def test_json_example_parses(block):
    json.loads(block.code)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language in ("yaml", "yml")], ids=lambda b: b.name)
def test_yaml_example_parses(block):
    yaml = pytest.importorskip("yaml")
    assert list(yaml.safe_load_all(block.code))


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language == "ini"], ids=lambda b: b.name)
def test_ini_example_parses(block):
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str
    parser.read_string(block.code)
    assert parser.sections()
