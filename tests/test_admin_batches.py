"""Batches and workflows in the admin: the batch list and page, their actions, the task list
filtered to a batch, a task page's dependencies, the Waiting status, and a CSV import's batch."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from admin_ext import task_workflow
from django_simple_queue import enqueue, lifecycle, workflows
from django_simple_queue.models import Batch, Task
from tests.factories import TaskFactory
from tests.test_admin import messages_of

pytestmark = pytest.mark.django_db

BATCHES = "admin:django_simple_queue_batch_changelist"
TASKS = "admin:django_simple_queue_task_changelist"
ADD = {"task": "tests.tasks.add", "args": {"a": 1, "b": 2}}
ON_COMPLETE = {"task": "tests.tasks.echo", "args": {}}


def batch_url(batch_id) -> str:
    return reverse("admin:django_simple_queue_batch_change", args=[batch_id])


def task_url(task_id) -> str:
    return reverse("admin:django_simple_queue_task_change", args=[task_id])


def make_batch(n: int = 4, name: str = "nightly", **kwargs) -> Batch:
    batch_id = enqueue.create_batch([ADD] * n, name=name, **kwargs)
    return Batch.objects.get(pk=batch_id)


def set_statuses(batch: Batch, *statuses: int) -> list[Task]:
    """Give the batch's tasks (oldest first) these statuses, as workers would have left them."""
    tasks = list(batch.tasks.order_by("created", "id"))
    for task, status in zip(tasks, statuses, strict=False):
        finished = timezone.now() if status in Task.FINISHED else None
        Task.objects.filter(pk=task.pk).update(status=status, finished_at=finished)
    return tasks


def staff(*perms: str) -> Client:
    user = User.objects.create_user(
        f"staff-{'-'.join(perms) or 'none'}", password="pw", is_staff=True
    )
    for perm in perms:
        user.user_permissions.add(Permission.objects.get(codename=perm))
    client = Client()
    client.force_login(user)
    return client


def post_action(client: Client, action: str, batches: list[Batch]):
    data = {"action": action, "_selected_action": [str(b.pk) for b in batches]}
    return client.post(reverse(BATCHES), data, follow=True)


# The list.


def test_the_list_shows_progress_counts_linked_to_the_tasks_and_the_callback(admin_client):
    batch = make_batch(4, on_complete=ON_COMPLETE)
    set_statuses(batch, Task.COMPLETED, Task.FAILED, Task.PROGRESS)
    unnamed = make_batch(1, name="")
    response = admin_client.get(reverse(BATCHES))
    assert response.status_code == 200
    html = response.content.decode()
    row = next(r for r in html.split("<tr") if "nightly" in r)
    # Two of four finished: the task list's progress bar, half filled.
    assert 'class="dsq-progress"' in row and "width: 50%" in row and "2 of 4" in row
    tasks = reverse(TASKS)
    for status, label in ((Task.COMPLETED, "Completed 1"), (Task.FAILED, "Failed 1")):
        link = f'href="{tasks}?batch={batch.pk}&amp;status__exact={status}"'
        assert re.search(
            rf"{re.escape(link)}><span class=\"dsq-badge dsq-status-{status}\">{label}<", row
        )
    assert "In progress 1" in row and "Queued 1" in row and "Cancelled" not in row
    # On complete: the callback's page, and its status (waiting for the batch).
    assert f'href="{task_url(batch.callback_id)}"' in row
    assert 'dsq-status-5">Waiting<' in row
    # An unnamed batch is listed by its id; with no callback, a dash.
    assert str(unnamed.pk) in html
    assert "Add batch" not in html


def test_the_counts_of_a_page_are_one_query_whatever_its_length(admin_client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(reverse(BATCHES)).status_code == 200
        return len(captured)

    make_batch(2, on_complete=ON_COMPLETE)
    few = queries()
    for i in range(5):
        make_batch(3, name=f"more-{i}", on_complete=ON_COMPLETE)
    assert queries() == few


def test_the_state_filter_and_search(admin_client):
    done = make_batch(1, name="done")
    set_statuses(done, Task.COMPLETED)
    workflows.close_finished([done.pk], "default", timezone.now())
    make_batch(1, name="open")
    html = admin_client.get(reverse(BATCHES), {"state": "finished"}).content.decode()
    assert ">done<" in html and ">open<" not in html
    html = admin_client.get(reverse(BATCHES), {"q": "ope"}).content.decode()
    assert ">open<" in html and ">done<" not in html


def test_the_task_list_filtered_to_a_batch_says_so(admin_client):
    batch = make_batch(3)
    failed = set_statuses(batch, Task.FAILED)[0]
    other = TaskFactory(failed=True)
    response = admin_client.get(
        reverse(TASKS), {"batch": str(batch.pk), "status__exact": str(Task.FAILED)}
    )
    assert response.status_code == 200
    assert [t.pk for t in response.context["cl"].result_list] == [failed.pk]
    assert other.pk not in [t.pk for t in response.context["cl"].result_list]
    html = response.content.decode()
    # The filter panel names the batch, selected.
    assert "By batch" in html
    assert re.search(r'<li class="selected">\s*<a href="[^"]*"[^>]*>nightly</a>', html)
    response = admin_client.get(reverse(TASKS), {"batch": "not-a-uuid"})
    assert response.status_code == 302 and "e=1" in response["Location"]


# The page.


def test_the_batch_page_shows_everything_read_only(admin_client):
    batch = make_batch(2, enqueued_by="ops", on_complete=ON_COMPLETE)
    set_statuses(batch, Task.COMPLETED)
    response = admin_client.get(batch_url(batch.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert "nightly" in html and "ops" in html and str(batch.pk) in html
    assert "1 of 2" in html and f'href="{task_url(batch.callback_id)}"' in html
    assert f'href="{reverse(TASKS)}?batch={batch.pk}">All its 2 tasks</a>' in html
    # Read-only, and no way to add one.
    form = html.split('id="batch_form"')[1].split("</form>")[0]
    assert 'name="_save"' not in html and not re.search(r'<input(?![^>]*type="hidden")', form)
    assert admin_client.get(reverse("admin:django_simple_queue_batch_add")).status_code == 403
    assert 'id="dsq-cancel"' in html and 'id="dsq-requeue-failed"' not in html


def test_an_open_batch_cannot_be_deleted_a_finished_one_can(admin_client):
    batch = make_batch(1)
    delete = reverse("admin:django_simple_queue_batch_delete", args=[batch.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    set_statuses(batch, Task.COMPLETED)
    workflows.close_finished([batch.pk], "default", timezone.now())
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not Batch.objects.filter(pk=batch.pk).exists()
    assert Task.objects.count() == 1  # its task stays, without a batch
    response = admin_client.get(reverse(BATCHES))
    assert "delete_selected" not in response.content.decode()


# Actions.


def test_cancel_cancels_the_unfinished_tasks_and_the_callback(admin_client):
    batch = make_batch(4, on_complete=ON_COMPLETE)
    done, running, queued, waiting = set_statuses(
        batch, Task.COMPLETED, Task.PROGRESS, Task.QUEUED, Task.WAITING
    )
    response = post_action(admin_client, "cancel_batches", [batch])
    texts = messages_of(response)
    # The queued and the waiting task, and the callback.
    assert "3 tasks that had not started were cancelled." in texts
    assert any("requested for 1 running task" in t for t in texts)
    statuses = dict(Task.objects.values_list("pk", "status"))
    assert statuses[done.pk] == Task.COMPLETED
    assert statuses[queued.pk] == statuses[waiting.pk] == Task.CANCELLED
    assert statuses[running.pk] == Task.PROGRESS
    assert Task.objects.get(pk=running.pk).cancel_requested
    assert statuses[batch.callback_id] == Task.CANCELLED


def test_requeue_failed_puts_them_back_and_reopens_the_batch(admin_client):
    batch = make_batch(3, on_complete=ON_COMPLETE)
    failed, done, cancelled = set_statuses(batch, Task.FAILED, Task.COMPLETED, Task.CANCELLED)
    workflows.close_finished([batch.pk], "default", timezone.now())
    batch.refresh_from_db()
    assert batch.is_finished and batch.callback.status == Task.QUEUED
    Task.objects.filter(pk=batch.callback_id).update(status=Task.COMPLETED)
    response = post_action(admin_client, "requeue_failed", [batch])
    assert "1 failed task was enqueued again." in messages_of(response)
    statuses = dict(Task.objects.values_list("pk", "status"))
    assert statuses[failed.pk] == Task.QUEUED
    assert (statuses[done.pk], statuses[cancelled.pk]) == (Task.COMPLETED, Task.CANCELLED)
    batch.refresh_from_db()
    assert not batch.is_finished and batch.callback.status == Task.WAITING


def test_the_batch_page_buttons_post_only(admin_client):
    batch = make_batch(2)
    set_statuses(batch, Task.FAILED)
    html = admin_client.get(batch_url(batch.pk)).content.decode()
    assert 'id="dsq-requeue-failed"' in html and 'id="dsq-cancel"' in html
    requeue = reverse("admin:django_simple_queue_batch_requeue_failed", args=[batch.pk])
    assert admin_client.get(requeue).status_code == 405
    response = admin_client.post(requeue, follow=True)
    assert response.redirect_chain[-1][0] == batch_url(batch.pk)
    assert "1 failed task was enqueued again." in messages_of(response)
    assert not batch.tasks.filter(status=Task.FAILED).exists()
    cancel = reverse("admin:django_simple_queue_batch_cancel", args=[batch.pk])
    assert admin_client.get(cancel).status_code == 405
    admin_client.post(cancel)
    assert set(batch.tasks.values_list("status", flat=True)) == {Task.CANCELLED}


@pytest.mark.parametrize("perms", [("view_task",), ("view_batch", "view_task")])
def test_staff_without_task_change_permission_see_batches_but_cannot_act(perms):
    batch = make_batch(2, on_complete=ON_COMPLETE)
    set_statuses(batch, Task.FAILED)
    client = staff(*perms)
    response = client.get(reverse(BATCHES))
    assert response.status_code == 200
    assert "cancel_batches" not in response.content.decode()
    page = client.get(batch_url(batch.pk)).content.decode()
    assert 'id="dsq-cancel"' not in page and 'id="dsq-requeue-failed"' not in page
    post_action(client, "cancel_batches", [batch])
    post_action(client, "requeue_failed", [batch])
    for name in ("cancel", "requeue_failed"):
        url = reverse(f"admin:django_simple_queue_batch_{name}", args=[batch.pk])
        assert client.post(url).status_code == 403
    assert set(Task.objects.values_list("status", flat=True)) == {
        Task.FAILED,
        Task.QUEUED,
        Task.WAITING,
    }


def test_staff_with_task_change_permission_can_act():
    batch = make_batch(1)
    client = staff("view_task", "change_task")
    response = post_action(client, "cancel_batches", [batch])
    assert "1 task that had not started was cancelled." in messages_of(response)


def test_staff_without_task_permissions_see_no_batches():
    batch = make_batch(1)
    client = staff()
    assert client.get(reverse(BATCHES)).status_code == 403
    assert client.get(batch_url(batch.pk)).status_code == 403


# A CSV import makes a batch.


def test_a_confirmed_import_queues_one_batch_named_after_the_file_and_shows_it(
    admin_client, admin_user
):
    text = 'task,args\ntests.tasks.add,"{""a"": 1}"\ntests.tasks.echo,"{""x"": 2}"\n'
    file = SimpleUploadedFile("tasks.csv", text.encode(), content_type="text/csv")
    response = admin_client.post(
        reverse("admin:django_simple_queue_task_import"),
        {"import_file": file, "format": "0", "resource": "0"},
    )
    assert not Task.objects.exists() and not Batch.objects.exists()  # the preview
    form = response.context["confirm_form"]
    data = {name: form.initial[name] for name in form.fields if name in form.initial}
    response = admin_client.post(reverse("admin:django_simple_queue_task_process_import"), data)
    batch = Batch.objects.get()
    assert response.status_code == 302 and response["Location"] == batch_url(batch.pk)
    assert (batch.name, batch.enqueued_by) == ("tasks.csv", admin_user.username)
    assert set(batch.tasks.values_list("task", flat=True)) == {
        "tests.tasks.add",
        "tests.tasks.echo",
    }
    assert Task.objects.count() == 2 and not batch.is_finished


# The task page and the Waiting status.


def test_a_task_page_shows_what_it_waits_for_and_what_waits_for_it(admin_client):
    first, second, third = enqueue.create_tasks(
        [ADD, {**ADD, "depends_on": [0]}, {**ADD, "depends_on": [1]}]
    )
    html = admin_client.get(task_url(second)).content.decode()
    waits_for = html.split("Waits for")[1].split("Waited on by")[0]
    assert f'href="{task_url(first)}"' in waits_for and 'dsq-status-0">Queued<' in waits_for
    waited_on = html.split("Waited on by")[1]
    assert f'href="{task_url(third)}"' in waited_on
    assert 'dsq-status-5">Waiting<' in waited_on
    plain = admin_client.get(task_url(TaskFactory().pk)).content.decode()
    for field in ("waits_for", "waited_on_by", "batch_link", "completes_batch_link"):
        assert f"field-{field}" not in plain


def test_a_task_page_links_its_batch_and_the_batch_its_callback_completes(admin_client):
    batch = make_batch(1, on_complete=ON_COMPLETE)
    member = batch.tasks.get()
    html = admin_client.get(task_url(member.pk)).content.decode()
    assert f'<a href="{batch_url(batch.pk)}">nightly</a>' in html
    html = admin_client.get(task_url(batch.callback_id)).content.decode()
    assert "On complete of batch" in html and f'href="{batch_url(batch.pk)}"' in html


def test_many_dependants_are_capped_with_a_link_to_all_of_them(admin_client, monkeypatch):
    monkeypatch.setattr(task_workflow, "LINKED_SHOWN", 3)
    root = enqueue.create_task("tests.tasks.add", {"a": 1})
    enqueue.create_tasks([{**ADD, "depends_on": [root]} for _ in range(5)])
    html = admin_client.get(task_url(root)).content.decode()
    waited_on = html.split("Waited on by")[1]
    assert waited_on.count("<li>") == 3
    more = f"{reverse(TASKS)}?waits_for={root}"
    assert f'<a href="{more}" class="dsq-linked-more">and 2 more</a>' in waited_on
    response = admin_client.get(more)
    assert len(response.context["cl"].result_list) == 5
    assert "By waits for" in response.content.decode()


def test_waiting_tasks_are_shown_filtered_counted_edited_and_cancelled(admin_client):
    first = enqueue.create_task("tests.tasks.add", {"a": 1})
    waiting_id = enqueue.create_task("tests.tasks.add", {"a": 2}, depends_on=[first])
    html = admin_client.get(reverse(TASKS)).content.decode()
    assert '<span class="dsq-badge dsq-status-5">Waiting</span>' in html
    assert "?status__exact=5" in html  # the status filter and the dashboard's count
    assert re.search(r'data-status="5">1<', html)
    response = admin_client.get(reverse(TASKS), {"status__exact": "5"})
    assert [t.pk for t in response.context["cl"].result_list] == [waiting_id]
    # Its page: editable as a queued task is, and a cancel button.
    page = admin_client.get(task_url(waiting_id)).content.decode()
    assert 'name="args"' in page and 'id="dsq-cancel"' in page
    response = admin_client.post(
        task_url(waiting_id),
        {"args": json.dumps({"a": 5}), "queue": "mail", "priority": "0", "max_attempts": "1"},
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    task = Task.objects.get(pk=waiting_id)
    assert (json.loads(task.args), task.queue, task.status) == ({"a": 5}, "mail", Task.WAITING)
    admin_client.post(reverse("admin:django_simple_queue_task_cancel", args=[waiting_id]))
    assert Task.objects.get(pk=waiting_id).status == Task.CANCELLED


def test_the_public_status_page_says_waiting(client):
    first = enqueue.create_task("tests.tasks.add", {"a": 1})
    waiting_id = enqueue.create_task("tests.tasks.add", {"a": 2}, depends_on=[first])
    response = client.get(reverse("django_simple_queue:task"), {"task_id": str(waiting_id)})
    html = response.content.decode()
    assert '<span class="status status-5">Waiting</span>' in html
    assert ".status-5 {" in html and 'http-equiv="refresh"' in html


def test_deleting_a_queued_task_from_the_admin_cancels_what_waits_for_it(admin_client):
    first = enqueue.create_task("tests.tasks.add", {"a": 1})
    waiting = enqueue.create_task("tests.tasks.add", {"a": 2}, depends_on=[first])
    delete = reverse("admin:django_simple_queue_task_delete", args=[first])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not Task.objects.filter(pk=first).exists()
    assert Task.objects.get(pk=waiting).status == Task.CANCELLED


def test_requeue_failed_says_what_comes_back_with_them(admin_client):
    batch_id = enqueue.create_batch(
        [
            {"task": "tests.tasks.fail", "args": {}},
            {"task": "tests.tasks.add", "args": {"a": 1}, "depends_on": [0]},
        ]
    )
    failing = Task.objects.get(batch=batch_id, task="tests.tasks.fail")
    lifecycle.claim_one(failing, "host:1")
    lifecycle.finish(failing, lifecycle.Outcome(lifecycle.Ending.FAILED, error="boom"))
    assert Task.objects.get(batch=batch_id, task="tests.tasks.add").status == Task.CANCELLED
    response = admin_client.post(
        reverse(BATCHES),
        {"action": "requeue_failed", "_selected_action": [str(batch_id)]},
        follow=True,
    )
    assert "1 failed task was enqueued again." in messages_of(response)
    assert "1 task they had stopped waits for them again." in messages_of(response)
    assert Task.objects.get(batch=batch_id, task="tests.tasks.add").status == Task.WAITING
