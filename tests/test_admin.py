"""The task admin through the test client: list, dashboard, forms, actions, permissions."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from admin_ext import dashboard
from django_simple_queue.models import Task
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:django_simple_queue_task_changelist"
ADD = "admin:django_simple_queue_task_add"


def change_url(task: Task) -> str:
    return reverse("admin:django_simple_queue_task_change", args=[task.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def staff(*perms: str) -> Client:
    user = User.objects.create_user(
        f"staff-{'-'.join(perms) or 'none'}", password="pw", is_staff=True
    )
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=f"{codename}_task"))
    client = Client()
    client.force_login(user)
    return client


def post_action(client: Client, action: str, tasks: list[Task], **extra: str):
    data = {"action": action, "_selected_action": [str(t.pk) for t in tasks], **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


# List and dashboard.


def test_changelist_shows_columns_badge_progress_and_dashboard(admin_client):
    running = TaskFactory(running=True, progress=0.4, progress_message="rows")
    TaskFactory(failed=True, finished_at=timezone.now())
    TaskFactory(completed=True, finished_at=timezone.now())
    TaskFactory(queue="mail")
    response = admin_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    html = response.content.decode()
    assert str(running.pk)[:8] in html
    assert 'class="dsq-badge dsq-status-1"' in html
    assert 'aria-valuenow="40"' in html
    assert 'class="dsq-dashboard"' in html
    assert "<svg" in html and "dsq-bar-completed" in html
    assert "elsewhere:1" in html  # live worker from the running task's heartbeat
    assert ">mail</a>" in html
    # one completed and one failed bar of the current hour carry their count
    assert 'data-count="1"' in html


def test_changelist_filters_and_search(admin_client):
    a = TaskFactory(queue="mail", task="tests.tasks.echo")
    b = TaskFactory(queue="default", failed=True, error="KeyError: 'zebra'")
    url = reverse(CHANGELIST)
    html = admin_client.get(url, {"queue": "mail"}).content.decode()
    assert str(a.pk)[:8] in html and str(b.pk)[:8] not in html
    html = admin_client.get(url, {"task": "tests.tasks.echo"}).content.decode()
    assert str(a.pk)[:8] in html and str(b.pk)[:8] not in html
    html = admin_client.get(url, {"q": "zebra"}).content.decode()
    assert str(b.pk)[:8] in html and str(a.pk)[:8] not in html
    html = admin_client.get(url, {"q": str(a.pk)}).content.decode()
    assert str(a.pk)[:8] in html and str(b.pk)[:8] not in html
    year = timezone.now().year
    assert admin_client.get(url, {"created__year": year, "status__exact": 3}).status_code == 200


def test_dashboard_numbers():
    now = timezone.now()
    TaskFactory(queue="mail", created=now)
    old = TaskFactory(queue="mail")
    Task.objects.filter(pk=old.pk).update(created=now - timedelta(hours=2))
    TaskFactory(running=True, worker_id="host:1")
    TaskFactory(running=True, worker_id="host:2", heartbeat_at=now - timedelta(hours=1))
    for _ in range(3):
        TaskFactory(completed=True, finished_at=now)
    TaskFactory(failed=True, finished_at=now - timedelta(hours=3))
    TaskFactory(failed=True, finished_at=now - timedelta(days=2))
    ctx = dashboard.context(now)
    counts = {row["status"]: row["count"] for row in ctx["statuses"]}
    assert counts == {0: 2, 1: 2, 2: 3, 3: 2, 4: 0, 5: 0}
    assert [(q["queue"], q["depth"]) for q in ctx["queues"]] == [("mail", 2)]
    assert ctx["queues"][0]["age"] >= timedelta(hours=2)
    assert [(w["name"], w["state"]) for w in ctx["workers"]] == [
        ("host:1", "busy"),
        ("host:2", "lost"),
    ]
    chart = ctx["chart"]
    assert chart["total_completed"] == 3 and chart["total_failed"] == 1
    assert len(chart["bars"]) == 48
    tallest = max(chart["bars"], key=lambda bar: bar.height)
    assert tallest.count == 3 and tallest.kind == "completed"


# Enqueue form.


def test_add_page_offers_allowed_tasks_with_signature_and_defaults(admin_client):
    response = admin_client.get(reverse(ADD))
    html = response.content.decode()
    assert ">add — Add two numbers.</option>" in html
    assert (
        "tests.tasks.missing"
        not in html.split('id="dsq-task-descriptions"')[0].split("<select")[-1]
    )
    descriptions = json.loads(
        html.split('id="dsq-task-descriptions" type="application/json">')[1].split("</script>")[0]
    )
    # Only defaults are pre-filled: a null for the required ``a`` would be refused or fail later.
    assert descriptions["tests.tasks.add"]["defaults"] == {"b": 1}
    fields = html.index('name="task"'), html.index('name="args"'), html.index('name="queue"')
    assert fields == tuple(sorted(fields))


def test_add_page_hides_the_defaults_of_redacted_arguments(admin_client):
    html = admin_client.get(reverse(ADD)).content.decode()
    assert "sk-default-secret" not in html
    descriptions = json.loads(
        html.split('id="dsq-task-descriptions" type="application/json">')[1].split("</script>")[0]
    )
    report = descriptions["tests.tasks.send_report"]
    assert report["signature"] == "send_report(recipient, api_key='•••')"
    assert report["defaults"] == {}
    api_key = report["params"][1]
    assert api_key["default_text"] == "•••" and "default" not in api_key


def test_posting_task_and_args_enqueues_with_defaults_and_user(admin_client, admin_user):
    response = admin_client.post(reverse(ADD), {"task": "tests.tasks.add", "args": '{"a": 2}'})
    assert response.status_code == 302
    task = Task.objects.get()
    assert (task.task, json.loads(task.args), task.status) == (
        "tests.tasks.add",
        {"a": 2},
        Task.QUEUED,
    )
    assert (task.queue, task.priority, task.max_attempts, task.timeout) == ("default", 0, 1, None)
    assert task.enqueued_by == admin_user.username


def test_add_page_buttons_say_enqueue_and_the_message_links_the_task_and_its_status_page(
    admin_client,
):
    html = admin_client.get(reverse(ADD)).content.decode()
    assert 'value="Enqueue" class="default" name="_save"' in html
    assert 'value="Enqueue and add another" name="_addanother"' in html
    assert 'name="_continue"' not in html
    response = admin_client.post(reverse(ADD), {"task": "tests.tasks.add", "args": '{"a": 2}'})
    task = Task.objects.get()
    assert response.url == reverse(CHANGELIST)
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    change = reverse("admin:django_simple_queue_task_change", args=[task.pk])
    assert message == (
        f'Task <a href="{change}">{task.pk}</a> was enqueued. '
        f'<a href="/django_simple_queue/task?task_id={task.pk}" target="_blank" rel="noopener">'
        "Public status page</a>"
    )
    response = admin_client.post(
        reverse(ADD), {"task": "tests.tasks.add", "args": '{"a": 3}', "_addanother": "1"}
    )
    assert response.url == reverse(ADD) and Task.objects.count() == 2


def test_add_form_refuses_a_value_that_does_not_fit_the_type_hint(admin_client):
    response = admin_client.post(
        reverse(ADD), {"task": "tests.tasks.monthly", "args": '{"month": null}'}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["args"] == [
        "argument 'month' must be int, not null."
    ]
    response = admin_client.post(reverse(ADD), {"task": "tests.tasks.monthly", "args": "{}"})
    assert response.context["adminform"].form.errors["args"] == [
        "missing required argument 'month'."
    ]
    assert not Task.objects.exists()


def test_long_docstrings_are_cut_short_in_the_task_select(admin_client):
    html = admin_client.get(reverse(ADD)).content.decode()
    label = html.split('<option value="tests.tasks.typed">')[1].split("</option>")[0]
    assert label.startswith("typed — Take one argument of each kind")
    assert label.endswith("…") and len(label) == 80


def test_posting_all_options(admin_client):
    run_after = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    data = {
        "task": "tests.tasks.echo",
        "args": '{"x": [1, 2]}',
        "queue": "mail",
        "priority": "5",
        "run_after_0": run_after.strftime("%Y-%m-%d"),
        "run_after_1": run_after.strftime("%H:%M:%S"),
        "max_attempts": "3",
        "timeout": "60",
    }
    assert admin_client.post(reverse(ADD), data).status_code == 302
    task = Task.objects.get()
    assert (task.queue, task.priority, task.max_attempts, task.timeout) == ("mail", 5, 3, 60)
    assert task.run_after == run_after


@pytest.mark.parametrize(
    ("task", "args", "message"),
    [
        ("tests.tasks.add", "{not json", "Arguments are not valid JSON"),
        ("tests.tasks.add", "[1, 2]", "must be a JSON object"),
        ("tests.tasks.add", '"text"', "must be a JSON object"),
        ("tests.tasks.add", "42", "must be a JSON object"),
        ("tests.tasks.add", "null", "must be a JSON object"),
        ("tests.tasks.add", '{"b": 2}', "missing required argument &#x27;a&#x27;"),
        ("tests.tasks.add", '{"a": 1, "c": 2}', "unexpected argument &#x27;c&#x27;"),
        ("tests.tasks.add", '{"a": NaN}', "not JSON compliant"),
        ("os.system", '{"command": "true"}', "Select a valid choice"),
        ("tests.tasks.missing", "{}", "Select a valid choice"),
        ("", "{}", "This field is required"),
    ],
)
def test_bad_input_shows_the_form_again_and_creates_nothing(admin_client, task, args, message):
    response = admin_client.post(reverse(ADD), {"task": task, "args": args})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Task.objects.exists()


@override_settings(DJANGO_SIMPLE_QUEUE_MAX_ARGS_SIZE=50)
def test_args_larger_than_the_limit_are_refused(admin_client):
    response = admin_client.post(
        reverse(ADD), {"task": "tests.tasks.echo", "args": json.dumps({"x": "y" * 100})}
    )
    assert response.status_code == 200
    assert "MAX_ARGS_SIZE" in response.content.decode()
    assert not Task.objects.exists()


@override_settings(DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS=None)
def test_without_allowed_tasks_the_form_explains_and_offers_nothing(admin_client):
    html = admin_client.get(reverse(ADD)).content.decode()
    assert "DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS is not set" in html
    assert 'value="tests.tasks.add"' not in html
    response = admin_client.post(reverse(ADD), {"task": "os.system", "args": '{"command": "true"}'})
    assert response.status_code == 200
    assert not Task.objects.exists()


# Task page.


def test_task_page_shows_everything_read_only_with_redacted_args(admin_client):
    task = TaskFactory(
        failed=True,
        args=json.dumps({"user": "ann", "password": "hunter2"}),
        output="out<b>",
        log="a log",
        error="Traceback\nValueError: boom",
        attempt_log=[
            {
                "attempt": 1,
                "worker": "h:1",
                "started": "s",
                "finished": "f",
                "outcome": "failed",
                "error": "first error",
            }
        ],
    )
    html = admin_client.get(change_url(task)).content.decode()
    assert "hunter2" not in html and "•••" in html
    assert "&quot;user&quot;: &quot;ann&quot;" in html  # pretty-printed, escaped
    assert "out&lt;b&gt;" in html and "a log" in html and "ValueError: boom" in html
    assert "first error" in html and 'class="dsq-timeline"' in html
    assert f"/django_simple_queue/task?task_id={task.pk}" in html
    assert 'id="dsq-requeue"' in html and 'id="dsq-cancel"' not in html
    # The button's own form comes before the change form: browsers drop a form nested in a form.
    assert html.index('id="dsq-requeue"') < html.index('id="task_form"')
    assert 'name="args"' not in html  # not editable once it ran


def test_editing_a_queued_task_is_checked_like_the_form(admin_client):
    task = TaskFactory(args='{"a": 1}')
    url = change_url(task)
    html = admin_client.get(url).content.decode()
    assert 'name="args"' in html and 'id="dsq-cancel"' in html
    base = {"queue": "default", "priority": "0", "max_attempts": "1", "timeout": ""}
    response = admin_client.post(url, {**base, "args": '{"z": 1}'})
    assert response.status_code == 200
    assert "unexpected argument" in response.content.decode()
    response = admin_client.post(url, {**base, "args": "[]"})
    assert "must be a JSON object" in response.content.decode()
    task.refresh_from_db()
    assert json.loads(task.args) == {"a": 1}
    assert (
        admin_client.post(url, {**base, "args": '{"a": 5, "b": 6}', "priority": "3"}).status_code
        == 302
    )
    task.refresh_from_db()
    assert (json.loads(task.args), task.priority) == ({"a": 5, "b": 6}, 3)


SECRET_ARGS = {
    "user": "ann",
    "password": "hunter2",
    "options": {"token": "token-t0k", "retries": 2},
    "hooks": [{"api_key": "key-k1"}],
}
# SECRET_ARGS as the edit form shows them.
SHOWN_ARGS = {
    "user": "ann",
    "password": "•••",
    "options": {"token": "•••", "retries": 2},
    "hooks": [{"api_key": "•••"}],
}
EDIT_BASE = {"queue": "default", "priority": "0", "max_attempts": "1", "timeout": ""}


def test_editing_a_queued_task_shows_its_args_redacted(admin_client):
    task = TaskFactory(task="tests.tasks.echo", args=json.dumps(SECRET_ARGS))
    response = admin_client.get(change_url(task))
    assert json.loads(response.context["adminform"].form["args"].value()) == SHOWN_ARGS
    html = response.content.decode()
    assert 'name="args"' in html and "&quot;password&quot;: &quot;•••&quot;" in html
    assert "hunter2" not in html and "token-t0k" not in html and "key-k1" not in html


def test_saving_a_queued_task_keeps_the_hidden_values(admin_client):
    task = TaskFactory(task="tests.tasks.echo", args=json.dumps(SECRET_ARGS))
    args = {**SHOWN_ARGS, "user": "bob", "options": {"token": "•••", "retries": 3}}
    response = admin_client.post(change_url(task), {**EDIT_BASE, "args": json.dumps(args)})
    assert response.status_code == 302
    task.refresh_from_db()
    assert json.loads(task.args) == {
        **SECRET_ARGS,
        "user": "bob",
        "options": {"token": "token-t0k", "retries": 3},
    }


def test_typing_a_hidden_value_anew_replaces_it(admin_client):
    task = TaskFactory(task="tests.tasks.echo", args=json.dumps(SECRET_ARGS))
    args = {**SHOWN_ARGS, "password": "correct horse"}
    response = admin_client.post(change_url(task), {**EDIT_BASE, "args": json.dumps(args)})
    assert response.status_code == 302
    task.refresh_from_db()
    assert json.loads(task.args) == {**SECRET_ARGS, "password": "correct horse"}
    # A marker where the task has no value to keep is refused, not stored as the value.
    args = {**args, "secret": "•••"}
    response = admin_client.post(change_url(task), {**EDIT_BASE, "args": json.dumps(args)})
    assert response.status_code == 200
    assert "the task has no value there to keep" in response.content.decode()
    task.refresh_from_db()
    assert "secret" not in json.loads(task.args)


def test_task_page_without_public_urls_does_not_fail(admin_client, settings):
    settings.ROOT_URLCONF = "tests.urls_admin_only"
    task = TaskFactory(completed=True)
    response = admin_client.get(change_url(task))
    assert response.status_code == 200
    assert "include django_simple_queue.urls" in response.content.decode()


def test_requeue_and_cancel_buttons(admin_client):
    done = TaskFactory(failed=True)
    response = admin_client.post(reverse("admin:django_simple_queue_task_requeue", args=[done.pk]))
    copy = Task.objects.get(requeued_from=done)
    assert response.status_code == 302 and response["Location"] == change_url(copy)
    assert copy.status == Task.QUEUED
    response = admin_client.post(reverse("admin:django_simple_queue_task_cancel", args=[copy.pk]))
    copy.refresh_from_db()
    assert copy.status == Task.CANCELLED
    assert (
        admin_client.get(
            reverse("admin:django_simple_queue_task_cancel", args=[copy.pk])
        ).status_code
        == 405
    )


# Actions.


def test_enqueue_action_puts_finished_tasks_back_and_skips_running(admin_client):
    failed, done, cancelled = (
        TaskFactory(failed=True),
        TaskFactory(completed=True),
        TaskFactory(cancelled=True),
    )
    running = TaskFactory(running=True)
    response = post_action(admin_client, "enqueue_tasks", [failed, done, cancelled, running])
    texts = messages_of(response)
    assert "3 tasks were enqueued." in texts
    assert "1 running task was skipped: cancel it first." in texts
    for task in (failed, done, cancelled):
        task.refresh_from_db()
        assert (task.status, task.attempts, task.finished_at) == (Task.QUEUED, 0, None)
    running.refresh_from_db()
    assert running.status == Task.PROGRESS


def test_requeue_action_copies_and_keeps_history(admin_client, admin_user):
    failed = TaskFactory(failed=True, queue="mail", priority=4)
    queued, running = TaskFactory(), TaskFactory(running=True)
    response = post_action(admin_client, "requeue_tasks", [failed, queued, running])
    assert "1 task was requeued as a new copy." in messages_of(response)
    assert "2 queued or running tasks were skipped." in messages_of(response)
    assert not Task.objects.filter(requeued_from__in=[queued, running]).exists()
    copy = Task.objects.get(requeued_from=failed)
    assert (copy.status, copy.queue, copy.priority, copy.args) == (
        Task.QUEUED,
        "mail",
        4,
        failed.args,
    )
    assert copy.enqueued_by == admin_user.username
    failed.refresh_from_db()
    assert failed.status == Task.FAILED


def test_cancel_action_cancels_queued_and_requests_running(admin_client):
    queued, running = TaskFactory(), TaskFactory(running=True)
    response = post_action(admin_client, "cancel_tasks", [queued, running])
    texts = messages_of(response)
    assert "1 task that had not started was cancelled." in texts
    assert any("Cancellation was requested for 1 running task" in t for t in texts)
    queued.refresh_from_db()
    running.refresh_from_db()
    assert queued.status == Task.CANCELLED
    assert (running.status, running.cancel_requested) == (Task.PROGRESS, True)


def test_apply_to_all_matching_confirms_then_acts_with_a_cap(admin_client, monkeypatch):
    from admin_ext import actions

    monkeypatch.setattr(actions, "APPLY_ALL_CAP", 2)
    mail = [TaskFactory(queue="mail") for _ in range(3)]
    other = TaskFactory(queue="default")
    url = reverse("admin:django_simple_queue_task_apply_all", args=["cancel_tasks"]) + "?queue=mail"
    html = admin_client.get(url).content.decode()
    assert "will act on 2 tasks" in html and "only the newest 2" in html
    assert Task.objects.filter(status=Task.CANCELLED).count() == 0
    response = admin_client.post(url, {"confirm": "yes"})
    assert response.status_code == 302 and response["Location"].endswith("?queue=mail")
    assert Task.objects.filter(queue="mail", status=Task.CANCELLED).count() == 2
    other.refresh_from_db()
    assert other.status == Task.QUEUED
    assert len(mail) == 3
    assert (
        admin_client.get(
            reverse("admin:django_simple_queue_task_apply_all", args=["delete"])
        ).status_code
        == 403
    )


# Permissions.


def test_view_only_staff_can_see_and_export_but_not_act():
    client = staff("view")
    task = TaskFactory(failed=True)
    list_html = client.get(reverse(CHANGELIST)).content.decode()
    assert "dsq-dashboard" in list_html
    assert "enqueue_tasks" not in list_html and "dsq-apply-all" not in list_html
    assert 'href="/admin/django_simple_queue/task/export/' in list_html
    assert client.get(reverse("admin:django_simple_queue_task_export")).status_code == 200
    assert client.get(reverse("admin:django_simple_queue_task_import")).status_code == 403
    html = client.get(change_url(task)).content.decode()
    assert 'id="dsq-requeue"' not in html
    assert client.get(reverse(ADD)).status_code == 403
    assert (
        client.post(reverse(ADD), {"task": "tests.tasks.add", "args": '{"a": 1}'}).status_code
        == 403
    )
    post_action(client, "enqueue_tasks", [task])
    assert (
        client.post(reverse("admin:django_simple_queue_task_requeue", args=[task.pk])).status_code
        == 403
    )
    assert (
        client.post(reverse("admin:django_simple_queue_task_cancel", args=[task.pk])).status_code
        == 403
    )
    url = reverse("admin:django_simple_queue_task_apply_all", args=["enqueue_tasks"])
    assert client.post(url, {"confirm": "yes"}).status_code == 403
    task.refresh_from_db()
    assert task.status == Task.FAILED
    assert Task.objects.count() == 1


def test_add_permission_alone_can_enqueue_but_not_act():
    client = staff("view", "add")
    assert (
        client.post(reverse(ADD), {"task": "tests.tasks.add", "args": '{"a": 1}'}).status_code
        == 302
    )
    task = Task.objects.get()
    post_action(client, "cancel_tasks", [task])
    task.refresh_from_db()
    assert task.status == Task.QUEUED


def test_actions_need_csrf(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    task = TaskFactory()
    assert (
        client.post(reverse("admin:django_simple_queue_task_cancel", args=[task.pk])).status_code
        == 403
    )
    assert (
        client.post(
            reverse(CHANGELIST), {"action": "cancel_tasks", "_selected_action": [task.pk]}
        ).status_code
        == 403
    )
    task.refresh_from_db()
    assert task.status == Task.QUEUED


def test_requeue_and_apply_all_need_csrf(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    task = TaskFactory(failed=True)
    url = reverse("admin:django_simple_queue_task_requeue", args=[task.pk])
    assert client.post(url).status_code == 403
    url = reverse("admin:django_simple_queue_task_apply_all", args=["enqueue_tasks"])
    assert client.post(url, {"confirm": "yes"}).status_code == 403
    assert Task.objects.count() == 1
    task.refresh_from_db()
    assert task.status == Task.FAILED


def test_every_action_declares_its_permission():
    from django.contrib.admin import site

    from admin_ext import actions

    model_admin = site._registry[Task]
    # A copy is a new task: "requeue" is TaskAdmin.has_requeue_permission, add and change.
    expected = {
        "enqueue_tasks": ["change"],
        "requeue_tasks": ["requeue"],
        "cancel_tasks": ["change"],
    }
    for name, func in actions.ACTIONS.items():
        assert list(func.allowed_permissions) == expected[name], name  # type: ignore[attr-defined]
        assert func in model_admin.actions


def every_write(client: Client, task: Task) -> list[int]:
    """POST each action, button and apply-to-all view on ``task``; the status codes."""
    codes = []
    for action in ("enqueue_tasks", "requeue_tasks", "cancel_tasks"):
        codes.append(post_action(client, action, [task]).status_code)
        url = reverse("admin:django_simple_queue_task_apply_all", args=[action])
        codes.append(client.post(url, {"confirm": "yes"}).status_code)
    for view in ("requeue", "cancel"):
        url = reverse(f"admin:django_simple_queue_task_{view}", args=[task.pk])
        codes.append(client.post(url).status_code)
    return codes


@pytest.mark.parametrize("perms", [(), ("view",), ("view", "add"), ("view", "add", "delete")])
def test_staff_without_change_permission_cannot_act(perms):
    client = staff(*perms)
    queued, failed = TaskFactory(), TaskFactory(failed=True)
    for task in (queued, failed):
        codes = every_write(client, task)
        # Actions the user lacks are not offered (the list answers as for no action, or 403 without
        # view permission); the buttons and apply-to-all views refuse.
        assert codes[1::2][:3] == [403, 403, 403]
        assert codes[-2:] == [403, 403]
    assert Task.objects.count() == 2
    assert list(Task.objects.order_by("status").values_list("status", "cancel_requested")) == [
        (Task.QUEUED, False),
        (Task.FAILED, False),
    ]


def test_requeueing_a_copy_needs_the_add_permission():
    client = staff("view", "change")
    failed = TaskFactory(failed=True)
    assert "requeue_tasks" not in client.get(reverse(CHANGELIST)).content.decode()
    assert 'id="dsq-requeue"' not in client.get(change_url(failed)).content.decode()
    post_action(client, "requeue_tasks", [failed])
    url = reverse("admin:django_simple_queue_task_apply_all", args=["requeue_tasks"])
    assert client.post(url, {"confirm": "yes"}).status_code == 403
    button = reverse("admin:django_simple_queue_task_requeue", args=[failed.pk])
    assert client.post(button).status_code == 403
    assert Task.objects.count() == 1

    User.objects.get(username="staff-view-change").user_permissions.add(
        Permission.objects.get(codename="add_task")
    )
    assert 'id="dsq-requeue"' in client.get(change_url(failed)).content.decode()
    response = post_action(client, "requeue_tasks", [failed])
    assert "1 task was requeued as a new copy." in messages_of(response)
    assert client.post(button).status_code == 302
    assert Task.objects.filter(requeued_from=failed).count() == 2


def test_non_staff_users_are_sent_to_the_login_page_and_nothing_changes(django_user_model):
    user = django_user_model.objects.create_user("plain", password="pw")
    client = Client()
    client.force_login(user)
    task = TaskFactory()
    for url in (
        reverse("admin:django_simple_queue_task_cancel", args=[task.pk]),
        reverse("admin:django_simple_queue_task_requeue", args=[task.pk]),
        reverse("admin:django_simple_queue_task_apply_all", args=["cancel_tasks"]),
        reverse(CHANGELIST),
        reverse(ADD),
    ):
        response = client.post(
            url, {"confirm": "yes", "action": "cancel_tasks", "_selected_action": [task.pk]}
        )
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url
    task.refresh_from_db()
    assert (task.status, task.cancel_requested, Task.objects.count()) == (Task.QUEUED, False, 1)


def test_apply_all_links_follow_the_users_actions():
    html = staff("view").get(reverse(CHANGELIST)).content.decode()
    assert "dsq-apply-all" not in html
    html = staff("view", "change").get(reverse(CHANGELIST), {"queue": "mail"}).content.decode()
    assert "/admin/django_simple_queue/task/apply/cancel_tasks/?queue=mail" in html


# Drop-in install: "django_simple_queue" alone in INSTALLED_APPS gives the whole admin.


def test_admin_works_without_admin_ext_in_installed_apps(admin_client, settings):
    from django.apps import apps
    from django.contrib.staticfiles import finders

    assert "admin_ext" not in settings.INSTALLED_APPS and not apps.is_installed("admin_ext")
    TaskFactory(running=True, progress=0.5)
    pages = {
        "list": admin_client.get(reverse(CHANGELIST)).content.decode(),
        "add": admin_client.get(reverse(ADD)).content.decode(),
    }
    css = '<link href="/static/django_simple_queue/admin/admin.css" media="all" rel="stylesheet">'
    assert css in pages["list"] and css in pages["add"]
    assert '<script src="/static/django_simple_queue/admin/enqueue.js"></script>' in pages["add"]
    assert 'class="dsq-dashboard"' in pages["list"]  # the app's own templates are found
    assert 'class="dsq-json-status"' in pages["add"]  # and its widget template
    for name in ("admin.css", "enqueue.js"):
        found = finders.find(f"django_simple_queue/admin/{name}")
        assert found and Path(found).stat().st_size > 500, name
        assert Path(found).is_relative_to(Path(apps.get_app_config("django_simple_queue").path))


def test_the_queue_imports_the_admin_layer_only_in_admin_py():
    import ast

    from django.apps import apps

    package = Path(apps.get_app_config("django_simple_queue").path)
    offenders = []
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(n.split(".")[0] in ("admin_ext", "import_export") for n in names):
                offenders.append(source.relative_to(package).as_posix())
    assert set(offenders) <= {"admin.py"}
    assert "admin.py" in offenders


# A large table: no COUNT(*) of the whole table.


def unbounded_counts(queries: list[dict[str, str]]) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if "COUNT(" in q["sql"].upper()
        and " WHERE " not in q["sql"].upper()
        and " LIMIT " not in q["sql"].upper()
    ]


@pytest.mark.postgres
def test_large_table_change_list_uses_estimated_counts(admin_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    now = timezone.now()
    rows = dashboard.EXACT_BELOW + 2_000
    Task.objects.bulk_create(
        Task(
            task="tests.tasks.add",
            args="{}",
            status=Task.COMPLETED,
            finished_at=now,
            created=now - timedelta(seconds=i),
        )
        for i in range(rows)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE django_simple_queue_task")
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert unbounded_counts(captured.captured_queries) == []
    cl = response.context["cl"]
    # The planner's estimate, close to the real number, with the admin's "show all" count off.
    assert abs(cl.result_count - rows) < rows * 0.2
    assert cl.full_result_count is None
    html = response.content.decode()
    assert "≈" in html  # the dashboard marks the estimated number of completed tasks
    with CaptureQueriesContext(connection) as captured:
        assert admin_client.get(reverse(CHANGELIST), {"p": "3"}).status_code == 200
    assert unbounded_counts(captured.captured_queries) == []


def test_small_table_counts_are_exact(admin_client):
    for _ in range(3):
        TaskFactory(completed=True)
    response = admin_client.get(reverse(CHANGELIST))
    assert response.context["cl"].result_count == 3
    assert "≈" not in response.content.decode()


@pytest.mark.postgres
def test_counts_stay_exact_when_the_statistics_are_stale(admin_client):
    from django.db import connection

    rows = dashboard.EXACT_BELOW + 2_000
    Task.objects.bulk_create(Task(task="tests.tasks.add", args="{}") for _ in range(rows))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE django_simple_queue_task")
    keep = list(Task.objects.values_list("pk", flat=True)[:3])
    Task.objects.exclude(pk__in=keep).delete()  # the planner still thinks the table is large
    assert dashboard.estimate(Task.objects.all()) == (3, True)
    response = admin_client.get(reverse(CHANGELIST))
    assert response.context["cl"].result_count == 3
    counts = {row["status"]: row["count"] for row in response.context["dashboard"]["statuses"]}
    assert counts[Task.QUEUED] == 3


def test_editing_a_queued_task_whose_task_is_no_longer_allowed_is_refused(admin_client, settings):
    task = TaskFactory(task="tests.tasks.add", args='{"a": 1}')
    settings.DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = {"tests.tasks.echo"}
    base = {"queue": "default", "priority": "0", "max_attempts": "1", "timeout": ""}
    response = admin_client.post(change_url(task), {**base, "args": '{"a": 7}'})
    assert response.status_code == 200
    assert "is not in the allowed list" in response.content.decode()
    task.refresh_from_db()
    assert json.loads(task.args) == {"a": 1}


def test_date_drill_down_without_scanning_for_distinct_dates(admin_client):
    from datetime import datetime

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    dates = [datetime(2024, 3, 5, 12, tzinfo=UTC), datetime(2025, 6, 10, 12, tzinfo=UTC)]
    dates.append(datetime(2025, 6, 12, 12, tzinfo=UTC))
    for created in dates:
        Task.objects.filter(pk=TaskFactory().pk).update(created=created)

    def choices(**params: str) -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(reverse(CHANGELIST), params)
        sqls = [q["sql"].upper() for q in captured.captured_queries]
        assert not [sql for sql in sqls if "DISTINCT" in sql and "TRUNC" in sql]
        return [choice["title"] for choice in response.context["dsq_date_hierarchy"]["choices"]]

    assert choices() == ["2024", "2025"]
    assert choices(created__year="2025") == ["June 2025"]
    assert choices(created__year="2025", created__month="6") == ["June 10", "June 11", "June 12"]
    assert choices(created__year="2025", created__month="6", created__day="12") == ["June 12"]
    html = admin_client.get(reverse(CHANGELIST), {"created__year": "2025"}).content.decode()
    assert "?created__month=6&amp;created__year=2025" in html
    assert '<a href="?" class="date-back">&lsaquo; All dates</a>' in html


def test_a_task_claimed_while_its_delete_was_confirmed_is_kept(rf, admin_user):
    # The status was checked when the page was shown; a worker may claim the task since.
    from django.contrib.admin.sites import site

    queued, claimed_meanwhile = TaskFactory(), TaskFactory(running=True)
    request = rf.post("/")
    request.user = admin_user
    site._registry[Task].delete_queryset(
        request, Task.objects.filter(pk__in=[queued.pk, claimed_meanwhile.pk])
    )
    assert list(Task.objects.values_list("pk", flat=True)) == [claimed_meanwhile.pk]


# The task page and the list, as a person reads them.


def test_a_finished_task_page_has_no_save_buttons_but_a_queued_one_does(admin_client):
    finished = TaskFactory(completed=True)
    html = admin_client.get(change_url(finished)).content.decode()
    for name in ("_save", "_continue", "_addanother"):
        assert f'name="{name}"' not in html
    assert "deletelink" in html  # deleting a finished task is still offered
    queued = TaskFactory(task="tests.tasks.add", args='{"a": 1}')
    assert 'name="_save"' in admin_client.get(change_url(queued)).content.decode()


def test_cancel_requested_reads_as_words_not_a_red_cross(admin_client):
    html = admin_client.get(change_url(TaskFactory(completed=True))).content.decode()
    assert "icon-no.svg" not in html
    assert '<div class="readonly">No</div>' in html
    running = TaskFactory(running=True, cancel_requested=True)
    assert "its worker stops it" in admin_client.get(change_url(running)).content.decode()


def test_a_failed_tasks_traceback_is_shown_once(admin_client):
    error = "Traceback (most recent call last):\n  File x\nValueError: boom"
    task = TaskFactory(
        failed=True,
        error=error,
        attempt_log=[{"attempt": 1, "outcome": "failed", "worker": "h:1", "error": error}],
    )
    html = admin_client.get(change_url(task)).content.decode()
    assert html.count("Traceback (most recent call last)") == 1
    assert html.count("ValueError: boom") == 2  # the Error field and the timeline's one line


def test_apply_to_all_matching_names_its_buttons_and_filters_as_the_admin_does(admin_client):
    TaskFactory(failed=True, task="tests.tasks.echo")
    html = admin_client.get(reverse(CHANGELIST), {"status__exact": "3"}).content.decode()
    assert "Requeue a copy of all matching tasks" in html
    assert "Cancel all matching tasks" in html
    url = reverse("admin:django_simple_queue_task_apply_all", args=["requeue_tasks"])
    html = admin_client.get(
        url, {"status__exact": "3", "task": "tests.tasks.echo", "q": "<x>", "created__year": "2026"}
    ).content.decode()
    assert "Filter: <code>" not in html
    assert "<strong>Status:</strong> Failed" in html
    assert "<strong>Task:</strong> tests.<wbr>tasks.<wbr>echo" in html
    assert "<strong>Search:</strong> &lt;x&gt;" in html
    assert "<strong>Created:</strong> 2026" in html
    assert "Requeue a copy of all matching tasks" in html


def test_the_list_shows_short_times_and_progress_under_the_status(admin_client):
    TaskFactory(running=True, progress=0.5, task="reports.monthly_sales.build")
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "reports.<wbr>monthly_<wbr>sales.<wbr>build" in html
    assert 'class="dsq-progress-line"' in html
    assert "<time datetime=" in html


def test_the_timeout_help_names_the_whole_setting_on_every_task_page(admin_client):
    for task in (TaskFactory(), TaskFactory(completed=True)):
        html = admin_client.get(change_url(task)).content.decode()
        assert "empty uses DJANGO_SIMPLE_QUEUE_TASK_TIMEOUT." in html
        assert "empty uses TASK_TIMEOUT" not in html


# Queue control from the dashboard; keys on the task page and in the filters.


def test_staff_who_may_change_tasks_pause_and_resume_a_queue_from_the_dashboard(admin_client):
    from django_simple_queue.models import Queue

    TaskFactory(queue="mail")
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    control = reverse("admin:django_simple_queue_task_queue_control")
    assert f'action="{control}"' in html and 'value="pause"' in html
    response = admin_client.post(control, {"queue": "mail", "action": "pause"}, follow=True)
    assert "Queue mail paused: workers take no new task from it." in messages_of(response)
    assert Queue.objects.get(name="mail").paused
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    row = html[html.index('data-queue="mail"') :]
    assert "paused" in row[: row.index("</tr>")] and 'value="resume"' in row
    admin_client.post(control, {"queue": "mail", "action": "resume"})
    assert not Queue.objects.get(name="mail").paused
    assert admin_client.get(control).status_code == 405

    viewer = staff("view")
    assert "queue-control" not in viewer.get(reverse(CHANGELIST)).content.decode()
    assert viewer.post(control, {"queue": "mail", "action": "pause"}).status_code == 403
    assert not Queue.objects.get(name="mail").paused


def test_the_task_page_shows_its_keys_and_the_list_filters_by_unique_key(admin_client):
    keyed = TaskFactory(unique_key="import:42", concurrency_key="acct:7", concurrency_limit=2)
    TaskFactory()
    html = admin_client.get(change_url(keyed)).content.decode()
    assert "import:42" in html and "acct:7" in html
    listed = admin_client.get(reverse(CHANGELIST), {"unique_key": "import:42"})
    assert [t.pk for t in listed.context["cl"].result_list] == [keyed.pk]
    assert "?unique_key=import%3A42" in admin_client.get(reverse(CHANGELIST)).content.decode()
