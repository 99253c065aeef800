"""What only a browser shows: the admin's CSS and scripts at work, driven by headless Chromium.

Playwright drives Debian's Chromium (``/usr/bin/chromium``, or ``DSQ_CHROMIUM``) against
pytest-django's live server. Screenshots go to ``artifacts/browser/``; with ``DSQ_SCREENSHOTS=1``
they are also written to ``docs/images/`` for the documentation.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections, transaction
from django.utils import timezone

from django_simple_queue.models import Schedule, Task
from tests.conftest import ROOT
from tests.factories import TaskFactory

CHROMIUM = os.environ.get("DSQ_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "browser-pw"

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        sync_playwright is None, reason="playwright is not installed (pip install playwright)"
    ),
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK),
        reason=f"no Chromium at {CHROMIUM} (apt-get install chromium, or set DSQ_CHROMIUM)",
    ),
]


def screenshot(target: Any, name: str, full_page: bool = True) -> None:
    """Save a screenshot of a page or element as a test artifact (and for the docs on request)."""
    folder = ROOT / "artifacts" / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {"full_page": full_page} if isinstance(target, Page) else {}
    target.screenshot(path=str(folder / name), **options)
    if os.environ.get("DSQ_SCREENSHOTS") == "1":
        docs = ROOT / "docs" / "images"
        docs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / name, docs / name)


@pytest.fixture
def staff_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("browser", "browser@example.org", PASSWORD)


@pytest.fixture
def page(staff_user: Any, live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    """A logged-in admin page in headless Chromium."""
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between browser steps are still synchronous and run in order.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    assert sync_playwright is not None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(
            viewport={"width": 1400, "height": 1000}, base_url=live_server.url
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto("/admin/login/?next=/admin/")
        page.fill("#id_username", staff_user.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        expect(page.locator("#user-tools")).to_contain_text(staff_user.username)
        yield page
        context.close()
        browser.close()
        # ORM calls made while Playwright's loop runs get their own connection (asgiref's
        # Local is per task then); close it here or PostgreSQL cannot drop the test database.
        connections.close_all()


def css(page: Page, selector: str, prop: str) -> str:
    return str(page.eval_on_selector(selector, f"e => getComputedStyle(e).{prop}"))


@pytest.mark.django_db(transaction=True)
def test_list_shows_badges_progress_bar_and_dashboard_chart(page: Page) -> None:
    now = timezone.now()
    # A day of history: 1 to 5 completed tasks per hour, one failure every sixth hour.
    completed = {hour: 1 + hour * 7 % 5 for hour in range(24)}
    failed = dict.fromkeys(range(0, 24, 6), 1)
    for counts, trait in ((completed, "completed"), (failed, "failed")):
        for hour, n in counts.items():
            for _ in range(n):
                TaskFactory(**{trait: True}, finished_at=now - timedelta(hours=hour))
    TaskFactory(queue="mail")
    running = TaskFactory(running=True, progress=0.4, progress_message="rows")  # the newest row

    page.goto("/admin/django_simple_queue/task/")
    # The stylesheet is served from django_simple_queue's static files: badges are coloured.
    assert css(page, ".dsq-badge.dsq-status-1", "backgroundColor") == "rgb(26, 109, 179)"
    assert css(page, ".dsq-badge.dsq-status-3", "backgroundColor") == "rgb(186, 33, 33)"
    row = page.locator("#result_list tr", has_text=str(running.pk)[:8])
    bar, fill = row.locator(".dsq-progress"), row.locator(".dsq-progress-fill")
    bar_box, fill_box = bar.bounding_box(), fill.bounding_box()
    assert bar_box and fill_box
    assert fill_box["width"] == pytest.approx(bar_box["width"] * 0.4, abs=3)
    expect(row.locator(".dsq-progress-text")).to_have_text("40%")

    dashboard = page.locator("#dsq-dashboard")
    done, lost = sum(completed.values()), sum(failed.values())
    expect(dashboard).to_contain_text(f"Last 24 hours: {done} completed, {lost} failed")
    expect(page.locator("svg.dsq-chart rect.dsq-bar-completed")).to_have_count(24)
    tallest = page.locator('svg.dsq-chart rect.dsq-bar-completed[data-count="5"]').first
    one = page.locator('svg.dsq-chart rect.dsq-bar-failed[data-count="1"]').first
    tallest_box, one_box = tallest.bounding_box(), one.bounding_box()
    assert tallest_box and one_box
    # Drawn to scale: an hour with 5 completed is five times as tall as one with 1 failed.
    assert tallest_box["height"] == pytest.approx(5 * one_box["height"], rel=0.05)
    assert css(page, "svg.dsq-chart rect.dsq-bar-failed", "fill") == "rgb(186, 33, 33)"
    screenshot(page, "admin-list.png", full_page=False)
    screenshot(dashboard, "admin-dashboard.png")


def args_of(page: Page) -> dict[str, Any]:
    return dict(json.loads(page.locator("#id_args").input_value()))


def arg(page: Page, name: str) -> Any:
    return page.locator(f"#id_dsq_arg_{name}")


@pytest.mark.django_db(transaction=True)
def test_enqueue_form_shows_a_field_per_parameter_in_step_with_the_json(page: Page) -> None:
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto("/admin/django_simple_queue/task/add/")
    page.select_option("#id_task", "tests.tasks.typed")
    # One typed field per parameter; the JSON holds the defaults only, not the required count.
    expect(page.locator(".dsq-arg")).to_have_count(10)
    kinds = {
        name: page.eval_on_selector(f"#id_dsq_arg_{name}", "e => e.type")
        for name in ("count", "ratio", "name", "flag", "day", "at", "size", "tags")
    }
    assert kinds == {
        "count": "number",
        "ratio": "number",
        "name": "text",
        "flag": "checkbox",
        "day": "date",
        "at": "datetime-local",
        "size": "select-one",
        "tags": "text",
    }
    assert "count" not in args_of(page) and args_of(page)["ratio"] == 0.5
    expect(page.locator("label[for=id_dsq_arg_count]")).to_have_class("required")
    expect(page.locator("label[for=id_dsq_arg_ratio]")).not_to_have_class("required")
    expect(arg(page, "ratio")).to_have_value("0.5")
    # The null default of an Optional is an empty field, not a value the field cannot show.
    expect(arg(page, "at")).to_have_value("")
    assert page.eval_on_selector("#id_dsq_arg_at", "e => e.className") == ""
    expect(page.locator(".dsq-arg-signature code")).to_contain_text("typed(count: int, ratio")

    # A field writes the JSON ...
    arg(page, "count").fill("12")
    arg(page, "flag").check()
    page.select_option("#id_dsq_arg_size", label='"large"')
    arg(page, "tags").fill('["a", "b"]')
    arg(page, "day").fill("2025-06-01")
    written = args_of(page)
    assert (written["count"], written["flag"], written["size"]) == (12, True, "large")
    assert (written["tags"], written["day"]) == (["a", "b"], "2025-06-01")
    arg(page, "name").fill("")  # an empty field leaves its argument out
    assert "name" not in args_of(page)
    screenshot(page, "admin-enqueue.png")

    # ... and the JSON writes the fields.
    page.locator("#id_args").fill(json.dumps({"count": 7, "name": "y", "size": "small"}))
    expect(arg(page, "count")).to_have_value("7")
    expect(arg(page, "name")).to_have_value("y")
    expect(arg(page, "flag")).not_to_be_checked()
    expect(arg(page, "tags")).to_have_value("")
    assert page.eval_on_selector("#id_dsq_arg_size", "e => e.selectedOptions[0].text") == '"small"'

    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was enqueued")
    task = Task.objects.get()
    assert (task.task, json.loads(task.args)) == (
        "tests.tasks.typed",
        {"count": 7, "name": "y", "size": "small"},
    )


@pytest.mark.django_db(transaction=True)
def test_enqueue_select_of_a_long_docstring_stays_within_the_form(page: Page) -> None:
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto("/admin/django_simple_queue/task/add/")
    page.select_option("#id_task", "tests.tasks.typed")
    select = page.locator("#id_task").bounding_box()
    form = page.locator("#task_form fieldset").first.bounding_box()
    assert select and form
    assert select["x"] + select["width"] <= form["x"] + form["width"]


@pytest.mark.django_db(transaction=True)
def test_bad_json_shows_one_error_and_enqueue_links_the_task(page: Page) -> None:
    page.goto("/admin/django_simple_queue/task/add/")
    page.select_option("#id_task", "tests.tasks.add")
    assert args_of(page) == {"b": 1}  # a is required: no value is made up for it
    expect(page.locator("input[name=_save]")).to_have_value("Enqueue")
    expect(page.locator("input[name=_addanother]")).to_have_value("Enqueue and add another")
    expect(page.locator("input[name=_continue]")).to_have_count(0)
    errors = page.locator("#content-main").get_by_text("not valid JSON")

    page.locator("#id_args").fill('{"a": 2, "b": }')
    expect(errors).to_have_count(1)
    expect(arg(page, "a")).to_be_disabled()  # the fields wait for JSON they can read
    page.click("input[name=_save]")
    expect(page.locator(".errorlist")).to_contain_text("Arguments are not valid JSON")
    expect(errors).to_have_count(1)
    assert not Task.objects.exists()

    page.locator("#id_args").fill('{"b": 3}')
    expect(errors).to_have_count(0)
    arg(page, "a").fill("2")
    page.click("input[name=_save]")
    task = Task.objects.get()
    assert json.loads(task.args) == {"a": 2, "b": 3}
    message = page.locator(".messagelist")
    expect(message).to_contain_text(f"Task {task.pk} was enqueued.")
    expect(message.locator("a").first).to_have_attribute(
        "href", f"/admin/django_simple_queue/task/{task.pk}/change/"
    )
    expect(message.locator("a", has_text="Public status page")).to_have_attribute(
        "href", f"/django_simple_queue/task?task_id={task.pk}"
    )


@pytest.mark.django_db(transaction=True)
def test_task_page_shows_results_timeline_and_requeues(page: Page) -> None:
    started = timezone.now() - timedelta(minutes=3)
    task = TaskFactory(
        failed=True,
        task="tests.tasks.echo",  # takes any keyword: its copy passes the checks
        args=json.dumps({"a": 1, "password": "hunter2"}),
        output="partial output",
        log="INFO starting\nWARNING retrying",
        error="Traceback (most recent call last):\nValueError: boom",
        attempts=2,
        max_attempts=2,
        started_at=started,
        finished_at=started + timedelta(seconds=42),
        worker_id="host-a:4242",
        attempt_log=[
            {
                "attempt": 1,
                "worker": "host-a:4242",
                "started": "10:00:00",
                "finished": "10:00:20",
                "outcome": "failed",
                "error": "ValueError: first",
            },
            {
                "attempt": 2,
                "worker": "host-a:4242",
                "started": "10:00:21",
                "finished": "10:00:42",
                "outcome": "failed",
                "error": "ValueError: boom",
            },
        ],
    )
    page.goto(f"/admin/django_simple_queue/task/{task.pk}/change/")
    content = page.locator("#content")
    expect(content).to_contain_text("ValueError: boom")
    expect(content).to_contain_text("INFO starting")
    expect(content).not_to_contain_text("hunter2")
    expect(page.locator(".dsq-timeline li")).to_have_count(2)
    assert css(page, ".dsq-pre", "whiteSpace") == "pre-wrap"
    expect(page.locator("a", has_text="Public status page")).to_have_attribute(
        "href", f"/django_simple_queue/task?task_id={task.pk}"
    )
    screenshot(page, "admin-task.png")

    page.click("#dsq-requeue")
    expect(page.locator(".messagelist")).to_contain_text("1 task was requeued as a new copy.")
    copy = Task.objects.get(requeued_from=task)
    assert page.url.endswith(f"/admin/django_simple_queue/task/{copy.pk}/change/")
    assert copy.status == Task.QUEUED


LINE_BREAKS = """e => {
    // The characters after which the rendered text of e moves to a new line.
    const text = e.textContent, range = document.createRange(), node = [...e.childNodes];
    const breaks = [];
    let top = null, offset = 0;
    for (const child of node) {
        if (child.nodeType !== Node.TEXT_NODE) continue;
        for (let i = 0; i < child.length; i++) {
            range.setStart(child, i); range.setEnd(child, i + 1);
            const rect = range.getBoundingClientRect();
            if (top !== null && rect.top > top + 2) breaks.push(text[offset + i - 1]);
            top = rect.top;
        }
        offset += child.length;
    }
    return breaks;
}"""


@pytest.mark.django_db(transaction=True)
def test_the_list_fits_at_1400_px_and_paths_wrap_between_words(page: Page) -> None:
    path = "sample_site.quarterly_reporting.generate_quarterly_revenue_report_for_region"
    now = timezone.now()
    for _ in range(3):
        TaskFactory(completed=True, task=path, started_at=now, finished_at=now)
    TaskFactory(running=True, progress=0.3, started_at=now)
    page.goto("/admin/django_simple_queue/task/")
    results = page.locator(".results")
    assert results.evaluate("e => e.scrollWidth <= e.clientWidth"), "the table scrolls sideways"
    width = page.viewport_size["width"] if page.viewport_size else 0
    for header in ("Created", "Started", "Duration"):
        box = page.locator("#result_list thead th", has_text=header).bounding_box()
        assert box and box["x"] + box["width"] <= width, header
    cell = page.locator("#result_list td.field-task_column", has_text="generate_quarterly").first
    sidebar = page.locator("#changelist-filter a", has_text="generate_quarterly").first
    short = page.locator("#result_list td.field-task_column", has_text="tests.tasks.add")
    assert short.evaluate(LINE_BREAKS) == [], "a short path is not broken"
    for element in (cell, sidebar):
        breaks = element.evaluate(LINE_BREAKS)
        assert breaks, "the path is long enough to wrap"
        assert set(breaks) <= {".", "_"}, breaks
    screenshot(page, "admin-list.png", full_page=False)


@pytest.mark.django_db(transaction=True)
def test_a_finished_task_page_is_read_only_with_real_buttons(page: Page) -> None:
    task = TaskFactory(failed=True, task="tests.tasks.echo", error="Traceback\nValueError: x")
    page.goto(f"/admin/django_simple_queue/task/{task.pk}/change/")
    expect(page.locator("input[name=_save]")).to_have_count(0)
    requeue = page.locator("#dsq-requeue")
    badge = page.locator(".dsq-badge").first
    requeue_box, badge_box = requeue.bounding_box(), badge.bounding_box()
    assert requeue_box and badge_box
    assert requeue_box["height"] >= 2 * badge_box["height"]  # a button, not a status label


@pytest.mark.django_db(transaction=True)
def test_the_schedule_form_has_the_enqueue_forms_fields_refuses_bad_cron_and_lists_runs(
    page: Page,
) -> None:
    page.goto("/admin/django_simple_queue/schedule/add/")
    page.fill("#id_name", "weekday-report")
    page.select_option("#id_task", "tests.tasks.monthly")
    # The argument fields of the enqueue form, in step with the JSON.
    arg(page, "month").fill("11")
    assert args_of(page) == {"month": 11, "note": ""}
    page.fill("#id_cron", "0 9 * * mon-fry")
    page.click("input[name=_continue]")
    expect(page.locator(".errorlist")).to_contain_text("is not a valid cron expression")
    assert not Schedule.objects.exists()

    page.fill("#id_cron", "0 9 * * mon-fri")
    page.fill("#id_timezone", "Europe/Berlin")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    expect(page.locator(".dsq-upcoming li")).to_have_count(5)
    expect(page.locator(".dsq-upcoming li").first).to_contain_text("09:00:00")
    schedule = Schedule.objects.get()
    assert (schedule.cron, json.loads(schedule.args)) == (
        "0 9 * * mon-fri",
        {"month": 11, "note": ""},
    )
    screenshot(page, "admin-schedule.png")


@pytest.mark.django_db(transaction=True)
def test_failures_page_groups_by_cause_and_requeues_a_group(page: Page) -> None:
    now = timezone.now()
    causes = [
        ("tests.tasks.fail", "builtins.ValueError", "ValueError: row {} of the import is empty", 7),
        ("tests.tasks.echo", "django_simple_queue.backends.WorkerLost", "", 2),
        ("tests.tasks.fail", "builtins.TimeoutError", "", 3),
        (
            "tests.tasks.add",
            "builtins.TypeError",
            "TypeError: unsupported operand type(s) for +: 'int' and 'str' (row {})",
            1,
        ),
    ]
    errors = {
        "django_simple_queue.backends.WorkerLost": "Worker host-b:812 was lost: no heartbeat "
        "since 10:02:11 (rescued at 10:03:12).",
        "builtins.TimeoutError": "Task timed out after 600 seconds",
    }
    for n, (path, cause, error, count) in enumerate(causes):
        for i in range(count):
            TaskFactory(
                failed=True,
                task=path,
                args=json.dumps({"message": "no"} if path == "tests.tasks.fail" else {"a": i}),
                exception_type=cause,
                error=f"Traceback (most recent call last):\n  …\n{(error or errors[cause]).format(i)}",
                finished_at=now - timedelta(minutes=7 * n + 40 * i + 3),
            )
    page.goto("/admin/django_simple_queue/task/")
    page.click("#dsq-failures-link")
    assert page.url.endswith("/admin/django_simple_queue/task/failures/")
    rows = page.locator("tr.dsq-failure-group")
    expect(rows).to_have_count(4)
    first = rows.first
    expect(first).to_contain_text("builtins.ValueError")
    expect(first.locator("td.dsq-num")).to_have_text("7")
    expect(first).to_contain_text("ValueError: row 0 of the import is empty")
    # The table fits the window: long paths and messages wrap in their cells.
    table = page.locator("#dsq-failures").bounding_box()
    assert table and table["x"] + table["width"] <= 1400
    screenshot(page, "admin-failures.png", full_page=False)

    first.locator("a.dsq-group-requeue").click()
    expect(page.locator("#content")).to_contain_text("will act on 7 tasks")
    page.click("input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("7 tasks were requeued as new copies.")
    assert page.url.endswith("/admin/django_simple_queue/task/failures/")
    assert Task.objects.filter(status=Task.QUEUED, task="tests.tasks.fail").count() == 7
    assert Task.objects.failed().count() == 13

    page.locator("tr.dsq-failure-group", has_text="builtins.TypeError").locator(
        "td.dsq-num a"
    ).click()
    expect(page.locator("#result_list tbody tr")).to_have_count(1)


def fill_batch(name: str, statuses: list[int], on_complete: bool = True) -> Any:
    """A batch of ``len(statuses)`` tasks left with these statuses, as workers would have."""
    from django_simple_queue import enqueue, workflows
    from django_simple_queue.models import Batch

    options: dict[str, Any] = {"name": name, "enqueued_by": "ops"}
    if on_complete:
        options["on_complete"] = {"task": "tests.tasks.echo", "args": {}}
    task = {"task": "tests.tasks.add", "args": {"a": 1}}
    batch = Batch.objects.get(pk=enqueue.create_batch([task] * len(statuses), **options))
    now = timezone.now()
    for member, status in zip(batch.tasks.order_by("created", "id"), statuses, strict=True):
        finished = now if status in Task.FINISHED else None
        Task.objects.filter(pk=member.pk).update(status=status, finished_at=finished)
    with transaction.atomic():
        workflows.close_finished([batch.pk], "default", now)  # as the last finish would
    if batch.callback_id is not None and Batch.objects.get(pk=batch.pk).is_finished:
        Task.objects.filter(pk=batch.callback_id).update(status=Task.COMPLETED, finished_at=now)
    return batch


@pytest.mark.django_db(transaction=True)
def test_the_batch_list_and_page_show_progress_and_fit_at_1400_px(page: Page) -> None:
    done, failed, running, queued = Task.COMPLETED, Task.FAILED, Task.PROGRESS, Task.QUEUED
    fill_batch("invoices-2025-06.csv", [done] * 7 + [failed] + [running] * 2)
    fill_batch("nightly-reindex", [done] * 3 + [queued] * 9, on_complete=False)
    fill_batch("thumbnails", [done] * 4 + [Task.CANCELLED])
    page.goto("/admin/django_simple_queue/batch/")
    results = page.locator(".results")
    assert results.evaluate("e => e.scrollWidth <= e.clientWidth"), "the table scrolls sideways"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    row = page.locator("#result_list tr", has_text="invoices-2025-06.csv")
    bar, fill = row.locator(".dsq-progress"), row.locator(".dsq-progress-fill")
    bar_box, fill_box = bar.bounding_box(), fill.bounding_box()
    assert bar_box and fill_box
    assert fill_box["width"] == pytest.approx(bar_box["width"] * 0.8, abs=3)  # 8 of 10
    expect(row.locator(".dsq-progress-text")).to_have_text("8 of 10")
    # The callback waits for the batch: the Waiting badge has its own colour.
    waiting = row.locator(".dsq-badge.dsq-status-5")
    expect(waiting).to_have_text("Waiting")
    assert waiting.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(106, 76, 147)"
    screenshot(page, "admin-batches.png", full_page=False)

    row.locator("a", has_text="Failed 1").click()
    expect(page.locator("#changelist-filter li.selected", has_text="invoices-2025-06.csv"))
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    page.go_back()
    row.locator("th a", has_text="invoices-2025-06.csv").click()
    expect(page.locator("#dsq-requeue-failed")).to_be_visible()
    expect(page.locator("#dsq-cancel")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "admin-batch.png", full_page=False)
    page.locator("#dsq-requeue-failed").click()
    expect(page.locator(".messagelist")).to_contain_text("1 failed task was enqueued again.")
