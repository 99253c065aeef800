from __future__ import annotations

import json
import subprocess
import sys

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from django_simple_queue import lifecycle, tracing
from django_simple_queue.enqueue import create_tasks
from django_simple_queue.lifecycle import Ending, Outcome
from django_simple_queue.models import Task
from django_simple_queue.utils import create_task
from django_simple_queue.worker.recorder import Recorder
from tests.conftest import ROOT, run_python, worker_env

pytestmark = pytest.mark.django_db

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """The spans this process records, as a project that configured OpenTelemetry's SDK has them."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    return _EXPORTER


def test_outside_a_span_nothing_is_recorded(spans):
    task = Task.objects.get(id=create_task("tests.tasks.add", {"a": 1, "b": 2}))
    assert task.trace_context is None


def test_a_task_enqueued_in_a_span_runs_in_a_span_of_the_same_trace(spans):
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("request") as request:
        task_id = create_task("tests.tasks.add", {"a": 1, "b": 2}, queue="mail")
    stored = json.loads(Task.objects.get(id=task_id).trace_context)
    assert set(stored) == {"traceparent"}

    (claimed,) = lifecycle.claim("tests:1", queues=["mail"])
    recorder = Recorder()
    recorder.track(claimed)
    recorder.outcome(claimed, Outcome(Ending.COMPLETED, output="3"), 0.25)
    recorder.write()

    (run,) = [span for span in spans.get_finished_spans() if span.name != "request"]
    assert run.name == "run tests.tasks.add"
    assert run.context.trace_id == request.get_span_context().trace_id
    assert run.parent is not None
    assert run.parent.span_id == request.get_span_context().span_id
    assert run.kind is trace.SpanKind.CONSUMER
    assert run.status.is_ok
    assert dict(run.attributes) == {
        "django_simple_queue.task": "tests.tasks.add",
        "django_simple_queue.task_id": str(task_id),
        "django_simple_queue.queue": "mail",
        "django_simple_queue.attempt": 1,
        "django_simple_queue.outcome": "completed",
    }
    assert run.end_time - run.start_time == pytest.approx(0.25e9, rel=0.01)


def test_a_failed_attempt_is_an_error_span(spans):
    create_task("tests.tasks.fail", {})
    (claimed,) = lifecycle.claim("tests:1")
    recorder = Recorder()
    recorder.track(claimed)
    recorder.outcome(claimed, Outcome(Ending.FAILED, error="Traceback …\nValueError: boom"), 0.1)
    recorder.write()
    (run,) = spans.get_finished_spans()
    assert run.parent is None  # enqueued outside a span: a trace of its own
    assert run.attributes["django_simple_queue.outcome"] == "failed"
    assert run.status.status_code is trace.StatusCode.ERROR
    assert run.status.description == "ValueError: boom"


def test_the_bulk_path_records_the_context_too(spans):
    with trace.get_tracer("tests").start_as_current_span("import") as span:
        ids = create_tasks([{"task": "tests.tasks.add", "args": {"a": i}} for i in range(3)])
    trace_id = format(span.get_span_context().trace_id, "032x")
    for task in Task.objects.filter(id__in=ids):
        assert trace_id in json.loads(task.trace_context)["traceparent"]


def test_a_context_that_is_not_json_gives_a_trace_of_its_own(spans):
    task = Task.objects.get(id=create_task("tests.tasks.add", {"a": 1}))
    task.trace_context = "not json"
    tracing.record_attempt(task, "completed", 0.01)
    (run,) = spans.get_finished_spans()
    assert run.parent is None


@pytest.mark.slow
def test_a_real_worker_exports_the_span_under_the_request(transactional_db, tmp_path):
    """A worker process whose project configures the SDK (tests/settings_tracing.py)."""
    out = tmp_path / "spans.jsonl"
    env = worker_env(DJANGO_SETTINGS_MODULE="tests.settings_tracing", DSQ_SPANS_FILE=str(out))
    script = """
import django
django.setup()
from opentelemetry import trace
from django_simple_queue.utils import create_task
with trace.get_tracer("tests").start_as_current_span("request"):
    create_task("tests.tasks.add", {"a": 1, "b": 2})
"""
    run_python(script, env)
    proc = subprocess.run(
        [sys.executable, "-m", "django", "task_worker", "--burst", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    spans = {span["name"]: span for span in map(json.loads, out.read_text().splitlines())}
    request, run = spans["request"], spans["run tests.tasks.add"]
    assert run["context"]["trace_id"] == request["context"]["trace_id"]
    assert run["parent_id"] == request["context"]["span_id"]
    assert run["attributes"]["django_simple_queue.outcome"] == "completed"
    assert Task.objects.get().status == Task.COMPLETED


def test_without_opentelemetry_the_core_enqueues_and_runs(transactional_db):
    """None in sys.modules: the packages import as if they were not installed."""
    script = """
import sys
for name in ("opentelemetry", "prometheus_client"):
    sys.modules[name] = None
import django
django.setup()
from django_simple_queue import tracing
from django_simple_queue.models import Task
from django_simple_queue.utils import create_task
from django_simple_queue.worker.recorder import Recorder
from django_simple_queue import lifecycle
from django_simple_queue.lifecycle import Ending, Outcome
assert not tracing.enabled()
task_id = create_task("tests.tasks.add", {"a": 1, "b": 2})
(task,) = lifecycle.claim("tests:1")
recorder = Recorder()
recorder.track(task)
recorder.outcome(task, Outcome(Ending.COMPLETED, output="3"), 0.1)
recorder.write()
task = Task.objects.get(id=task_id)
print(task.status, task.trace_context)
"""
    assert run_python(script, worker_env()).split() == [str(Task.COMPLETED), "None"]
