"""The workflow benchmarks/workflows.py runs, apart from bench_tasks so that the other
benchmarks' workers do not import djjobs.workflows at start-up."""

from benchmarks.bench_tasks import noop
from djjobs.workflows import Step, Workflow

# Four no-op steps (one, then two in parallel, then one): what running jobs as a workflow
# costs over running them as plain jobs.
pipeline = Workflow("bench-pipeline", [Step("a", noop), [Step("b1", noop), Step("b2", noop)], Step("c", noop)])
