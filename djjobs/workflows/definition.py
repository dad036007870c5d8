"""The building blocks of a workflow: Step and Workflow, checked as they are made."""

from collections.abc import Iterable
from typing import Any, overload

from ..compat import InvalidTask, Task
from ..models import WorkflowRun
from ..payload import encode, storable
from .start import start_run


class Step:
    """One step: a task, the name it has in the run (default: the task's function name),
    keyword arguments of its own (JSON; they win over the context's, and its compensation gets
    them too), and optionally the task that undoes it."""

    @overload
    def __init__(
        self,
        name_or_task: Task,
        task: None = None,
        *,
        kwargs: dict[str, Any] | None = None,
        compensate: Task | None = None,
        when: str | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        name_or_task: str,
        task: Task,
        *,
        kwargs: dict[str, Any] | None = None,
        compensate: Task | None = None,
        when: str | None = None,
    ) -> None: ...

    def __init__(
        self,
        name_or_task: Any,  # Step(task) or Step(name, task); anything else is refused below
        task: Any = None,
        *,
        kwargs: dict[str, Any] | None = None,
        compensate: Task | None = None,
        when: str | None = None,
    ) -> None:
        if task is None:
            name_or_task, task = getattr(name_or_task, "name", None), name_or_task
        if not isinstance(task, Task):
            raise InvalidTask(f"A workflow step runs a task (decorate it with @djjobs.task), got {task!r}.")
        if compensate is not None and not isinstance(compensate, Task):
            raise InvalidTask(f"compensate= takes a task (decorate it with @djjobs.task), got {compensate!r}.")
        name = name_or_task
        if (
            not isinstance(name, str)
            or not name
            or len(name) > 100
            or not name.replace("_", "").replace("-", "").isalnum()
        ):
            raise InvalidTask(f"A step name is 1 to 100 letters, digits, '_' or '-', got {name!r}.")
        kwargs = dict(kwargs or {})
        try:
            encode(kwargs, f"Step {name!r}'s kwargs")
        except ValueError as exc:
            raise InvalidTask(str(exc)) from None
        if when is not None and (not isinstance(when, str) or not when):
            raise InvalidTask(f"when= names a key of the run's context, got {when!r}.")
        self.name, self.task, self.compensate, self.kwargs, self.when = name, task, compensate, kwargs, when

    def __repr__(self) -> str:
        return f"Step({self.name!r}, {self.task.module_path})"


class Workflow:
    """A named list of groups; a group is a Step or a list of Steps that run in parallel."""

    def __init__(self, name: str, steps: Iterable[Step | list[Step] | tuple[Step, ...]]) -> None:
        if not isinstance(name, str) or not name or len(name) > 200 or not storable(name):
            raise InvalidTask(
                f"A workflow name is a non-empty string of at most 200 characters, without NUL "
                f"or lone surrogates, got {name!r}."
            )
        groups = []
        for group in steps:
            group = list(group) if isinstance(group, (list, tuple)) else [group]
            if not group:
                raise InvalidTask(f"Workflow {name!r} has an empty group of steps.")
            for step in group:
                if not isinstance(step, Step):
                    raise InvalidTask(f"Workflow {name!r}: a group holds Steps, got {step!r}.")
            groups.append(group)
        if not groups:
            raise InvalidTask(f"Workflow {name!r} has no steps.")
        names = [step.name for group in groups for step in group]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidTask(f"Workflow {name!r} names more than one step {', '.join(map(repr, duplicates))}.")
        self.name, self.groups = name, groups

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, {len(self.groups)} group(s))"

    def plan(self) -> list[list[dict[str, Any]]]:
        return [
            [
                {
                    "name": s.name,
                    "task": s.task.module_path,
                    "kwargs": s.kwargs,
                    "compensate": s.compensate.module_path if s.compensate else None,
                    "when": s.when,
                }
                for s in group
            ]
            for group in self.groups
        ]

    def start(self, **input: Any) -> WorkflowRun:
        """Start a run: its row and a job per step, in the caller's transaction; the WorkflowRun."""
        return start_run(self, input)
