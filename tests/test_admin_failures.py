"""The failures page: failed tasks grouped by task path and cause, with group actions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from admin_ext import failures
from django_simple_queue.models import Task
from tests.factories import TaskFactory
from tests.test_admin import messages_of, staff

pytestmark = pytest.mark.django_db

PAGE = "admin:django_simple_queue_task_failures"
APPLY = "admin:django_simple_queue_task_failures_apply"
ADD_FAIL = {"task": "tests.tasks.add", "exception_type": "builtins.ValueError"}


def failed(task: str, cause: str, *, hours_ago: float = 0, error: str = "", **extra) -> Task:
    return TaskFactory(
        failed=True,
        task=task,
        exception_type=cause,
        error=error or f"Traceback …\n{cause.rsplit('.', 1)[-1]}: from {task}",
        finished_at=timezone.now() - timedelta(hours=hours_ago),
        **extra,
    )


def apply_url(action: str, task: str, cause: str) -> str:
    return reverse(APPLY, args=[action]) + f"?task={task}&exception_type={cause}"


def test_groups_count_first_and_last_seen_and_latest_message():
    failed("tests.tasks.add", "builtins.ValueError", hours_ago=5, error="x\nValueError: old")
    failed("tests.tasks.add", "builtins.ValueError", hours_ago=3)
    newest = failed(
        "tests.tasks.add", "builtins.ValueError", hours_ago=1, error="t\nValueError: new\n"
    )
    failed("tests.tasks.add", "builtins.KeyError", hours_ago=2)
    failed("tests.tasks.echo", "builtins.ValueError", hours_ago=4)
    TaskFactory(completed=True, task="tests.tasks.add")
    TaskFactory(cancelled=True, task="tests.tasks.add")

    groups, more = failures.groups()
    assert not more
    assert [(g.task, g.exception_type, g.count) for g in groups] == [
        ("tests.tasks.add", "builtins.ValueError", 3),
        ("tests.tasks.add", "builtins.KeyError", 1),
        ("tests.tasks.echo", "builtins.ValueError", 1),
    ]
    first = groups[0]
    assert first.last_seen == newest.finished_at
    assert first.first_seen == Task.objects.order_by("finished_at").first().finished_at
    assert first.message == "ValueError: new"
    assert groups[1].message == "KeyError: from tests.tasks.add"
    by_count, _ = failures.groups(order="count")
    assert [g.count for g in by_count] == [3, 1, 1]


def test_the_page_caps_the_groups_it_shows():
    for i in range(4):
        failed(f"tests.tasks.t{i}", "builtins.ValueError", hours_ago=i)
    groups, more = failures.groups(limit=3)
    assert more
    assert [g.task for g in groups] == ["tests.tasks.t0", "tests.tasks.t1", "tests.tasks.t2"]


def test_the_latest_message_is_read_from_the_errors_tail():
    failed(
        "tests.tasks.add", "builtins.ValueError", error="x" * 50_000 + "\nValueError: at the end"
    )
    (group,), _ = failures.groups()
    assert group.message == "ValueError: at the end"


def test_page_lists_groups_linking_to_the_filtered_list(admin_client):
    failed("tests.tasks.add", "builtins.ValueError")
    failed("tests.tasks.add", "builtins.ValueError")
    response = admin_client.get(reverse(PAGE))
    assert response.status_code == 200
    html = response.content.decode()
    assert "ValueError: from tests.tasks.add" in html
    list_url = (
        reverse("admin:django_simple_queue_task_changelist")
        + "?status__exact=3&amp;task=tests.tasks.add&amp;exception_type=builtins.ValueError"
    )
    assert f'href="{list_url}"' in html
    listed = admin_client.get(list_url.replace("&amp;", "&"))
    assert listed.status_code == 200
    assert len(listed.context["cl"].result_list) == 2
    assert 'class="button dsq-group-requeue"' in html
    assert 'class="button dsq-group-delete"' in html


def test_the_list_filters_by_exception_type(admin_client):
    failed("tests.tasks.add", "builtins.ValueError")
    failed("tests.tasks.add", "builtins.KeyError")
    url = reverse("admin:django_simple_queue_task_changelist")
    response = admin_client.get(url, {"exception_type": "builtins.KeyError"})
    assert [t.exception_type for t in response.context["cl"].result_list] == ["builtins.KeyError"]
    assert "?exception_type=builtins.ValueError" in response.content.decode()


def test_the_dashboard_links_to_the_page(admin_client):
    html = admin_client.get(reverse("admin:django_simple_queue_task_changelist")).content.decode()
    assert f'href="{reverse(PAGE)}" id="dsq-failures-link"' in html


def test_no_failures(admin_client):
    assert "No task has failed." in admin_client.get(reverse(PAGE)).content.decode()


def test_requeue_a_group_confirms_then_copies_and_keeps_the_originals(admin_client):
    originals = [failed("tests.tasks.add", "builtins.ValueError") for _ in range(3)]
    other = failed("tests.tasks.add", "builtins.KeyError")
    url = apply_url("requeue", "tests.tasks.add", "builtins.ValueError")
    confirm = admin_client.get(url)
    assert confirm.status_code == 200
    assert confirm.context["count"] == 3
    assert "builtins.ValueError" in confirm.content.decode()
    assert Task.objects.count() == 4  # a GET changes nothing
    response = admin_client.post(url, {"confirm": "yes"})
    assert response.status_code == 302
    assert response["Location"] == reverse(PAGE)
    copies = Task.objects.filter(requeued_from__isnull=False)
    assert sorted(c.requeued_from_id for c in copies) == sorted(t.pk for t in originals)
    assert all(c.status == Task.QUEUED and c.exception_type == "" for c in copies)
    assert Task.objects.failed().count() == 4
    assert not Task.objects.filter(requeued_from=other).exists()
    assert "3 tasks were requeued as new copies." in messages_of(response)


def test_delete_a_group_deletes_only_that_group_and_logs_it(admin_client):
    for _ in range(2):
        failed("tests.tasks.add", "builtins.ValueError")
    kept = [
        failed("tests.tasks.add", "builtins.KeyError"),
        failed("tests.tasks.echo", "builtins.ValueError"),
        TaskFactory(completed=True, task="tests.tasks.add", exception_type="builtins.ValueError"),
    ]
    url = apply_url("delete", "tests.tasks.add", "builtins.ValueError")
    assert admin_client.get(url).context["count"] == 2
    response = admin_client.post(url, {"confirm": "yes"})
    assert response.status_code == 302
    assert sorted(Task.objects.values_list("pk", flat=True)) == sorted(t.pk for t in kept)
    assert LogEntry.objects.filter(action_flag=DELETION).count() == 2
    assert "2 tasks were deleted." in messages_of(response)


def test_an_unknown_action_or_a_missing_group_is_not_found(admin_client):
    assert admin_client.get(apply_url("enqueue", "tests.tasks.add", "x")).status_code == 404
    assert admin_client.get(reverse(APPLY, args=["delete"])).status_code == 404


def test_view_only_staff_sees_the_page_without_buttons_and_cannot_post():
    client = staff("view")
    failed("tests.tasks.add", "builtins.ValueError")
    response = client.get(reverse(PAGE))
    assert response.status_code == 200
    html = response.content.decode()
    assert "ValueError: from tests.tasks.add" in html
    assert "dsq-group-requeue" not in html and "dsq-group-delete" not in html
    for action in ("requeue", "delete"):
        url = apply_url(action, "tests.tasks.add", "builtins.ValueError")
        assert client.get(url).status_code == 403
        assert client.post(url, {"confirm": "yes"}).status_code == 403
    assert Task.objects.count() == 1


def test_each_group_action_needs_its_own_permission():
    failed("tests.tasks.add", "builtins.ValueError")
    requeuer = staff("view", "add", "change")
    html = requeuer.get(reverse(PAGE)).content.decode()
    assert "dsq-group-requeue" in html and "dsq-group-delete" not in html
    url = apply_url("delete", "tests.tasks.add", "builtins.ValueError")
    assert requeuer.post(url, {"confirm": "yes"}).status_code == 403
    deleter = staff("view", "delete")
    html = deleter.get(reverse(PAGE)).content.decode()
    assert "dsq-group-delete" in html and "dsq-group-requeue" not in html
    url = apply_url("requeue", "tests.tasks.add", "builtins.ValueError")
    assert deleter.post(url, {"confirm": "yes"}).status_code == 403
    assert Task.objects.count() == 1


def test_staff_without_view_permission_cannot_see_the_page():
    assert staff().get(reverse(PAGE)).status_code == 403


def test_group_actions_need_csrf(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    failed("tests.tasks.add", "builtins.ValueError")
    for action in ("requeue", "delete"):
        url = apply_url(action, "tests.tasks.add", "builtins.ValueError")
        assert client.post(url, {"confirm": "yes"}).status_code == 403
    assert Task.objects.count() == 1
