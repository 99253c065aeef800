"""The test settings, plus OpenTelemetry's SDK configured as a project would, writing every span as
a line of JSON to the file named by DSQ_SPANS_FILE (tests/test_tracing.py)."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from tests.settings import *  # noqa: F403

_provider = TracerProvider()
_provider.add_span_processor(
    SimpleSpanProcessor(
        ConsoleSpanExporter(
            out=open(os.environ["DSQ_SPANS_FILE"], "a"),  # noqa: SIM115 (open for the process)
            formatter=lambda span: span.to_json(indent=None) + "\n",
        )
    )
)
trace.set_tracer_provider(_provider)
