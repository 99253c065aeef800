"""The demo's tasks, one per feature; every one is listed in ALLOWED_TASKS in settings.py.

``DEMOS`` describes how the landing page and ``demo_setup`` enqueue each of them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.mail import send_mail

from django_simple_queue.progress import set_progress

logger = logging.getLogger(__name__)


def send_welcome_email(email: str, name: str = "there") -> str:
    """A plain function: its return value becomes the output, what it prints goes to the log."""
    sent = send_mail(
        subject="Welcome aboard",
        message=f"Hello {name},\n\nyour account is ready.\n",
        from_email="demo@example.com",
        recipient_list=[email],
    )
    logger.warning("welcome e-mail for %s handed to the console backend", email)
    return f"sent {sent} e-mail to {email}"


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n**0.5) + 1))


def count_primes(limit: int = 100_000, chunks: int = 10, pause: float = 0.3) -> Iterator[str]:
    """A generator: each yield is appended to the output while the task still runs."""
    found = 0
    step = max(limit // chunks, 1)
    for low in range(0, limit, step):
        high = min(low + step, limit)
        found += sum(1 for n in range(low, high) if _is_prime(n))
        yield f"below {high:>7}: {found} primes\n"
        time.sleep(pause)  # so that the status page has something to show streaming in


async def check_services(services: list[str] | None = None, latency: float = 0.5) -> str:
    """A coroutine function: the worker runs it on an event loop; the checks overlap."""
    names = services or ["database", "cache", "search", "mail"]

    async def check(name: str, delay: float) -> str:
        await asyncio.sleep(delay)  # stands in for a network round trip
        return f"{name}: ok ({delay:.2f} s)"

    started = time.monotonic()
    lines = await asyncio.gather(
        *(check(name, latency * (1 + i / 10)) for i, name in enumerate(names))
    )
    elapsed = time.monotonic() - started
    return "\n".join([*lines, f"{len(names)} services checked in {elapsed:.2f} s, concurrently"])


def build_report(rows: int = 100, seconds: float = 5.0) -> str:
    """A slow task that reports progress: the status page and the admin show a progress bar."""
    total = 0
    for row in range(1, rows + 1):
        time.sleep(seconds / rows)
        total += row
        if row % 10 == 0 or row == rows:
            set_progress(row / rows, f"{row} of {rows} rows")
    return f"report ready: {rows} rows, total {total}"


def import_contacts(rows: list[str]) -> str:
    """Fails on a bad row: the traceback lands in the task's error, the prints so far in its log."""
    for number, row in enumerate(rows, start=1):
        if "@" not in row:
            raise ValueError(f"row {number}: {row!r} is not an e-mail address")
        print(f"imported {row}")
    return f"imported {len(rows)} contacts"


def call_flaky_api(key: str, failures: int = 2) -> str:
    """Fails its first ``failures`` calls, then succeeds: enqueue it with max_attempts > failures."""
    from sample_site.models import ApiCall

    ApiCall.objects.create(key=key)
    calls = ApiCall.objects.filter(key=key).count()
    if calls <= failures:
        raise ConnectionError(f"the API timed out (call {calls} for {key!r}); will be retried")
    return f"the API answered on call {calls}"


@dataclass(frozen=True)
class Demo:
    """One button of the landing page: which task, with what arguments and options."""

    title: str
    description: str
    task: str
    make_args: Callable[[], dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)


DEMOS: dict[str, Demo] = {
    "email": Demo(
        "Send a welcome e-mail",
        "A plain function; the e-mail it prints is in the log.",
        "sample_site.tasks.send_welcome_email",
        lambda: {"email": "ada@example.com", "name": "Ada"},
    ),
    "primes": Demo(
        "Count primes",
        "A generator whose output streams in, chunk by chunk.",
        "sample_site.tasks.count_primes",
        lambda: {"limit": 100_000},
    ),
    "services": Demo(
        "Check services",
        "An async function: four checks awaited concurrently.",
        "sample_site.tasks.check_services",
        lambda: {},
    ),
    "report": Demo(
        "Build a report",
        "A slow task (5 s) with a progress bar.",
        "sample_site.tasks.build_report",
        lambda: {"rows": 100, "seconds": 5.0},
        {"priority": 5},
    ),
    "import": Demo(
        "Import contacts",
        "Fails on its second row; see the error.",
        "sample_site.tasks.import_contacts",
        lambda: {"rows": ["ada@example.com", "grace(at)example.com", "alan@example.com"]},
    ),
    "flaky": Demo(
        "Call a flaky API",
        "Fails twice, succeeds on the third of three attempts.",
        "sample_site.tasks.call_flaky_api",
        lambda: {"key": secrets.token_hex(4), "failures": 2},
        {"max_attempts": 3},
    ),
}
