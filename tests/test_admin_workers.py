"""The admin's list of workers (admin_ext/workers.py) and the dashboard's worker card."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from django_simple_queue.models import Worker
from tests.factories import TaskFactory, WorkerFactory

pytestmark = pytest.mark.django_db

WORKERS = "admin:django_simple_queue_worker_changelist"


def test_the_worker_list_is_read_only_and_shows_each_state(admin_client):
    WorkerFactory(name="idle:1", queues=["mail"])
    WorkerFactory(name="busy:2", tasks_running=1)
    lost = WorkerFactory(name="gone:3", lost=True)
    html = admin_client.get(reverse(WORKERS)).content.decode()
    for name, state in (("idle:1", "idle"), ("busy:2", "busy"), ("gone:3", "lost")):
        assert name in html
        assert f'<td class="field-state">{state}</td>' in html
    assert reverse("admin:django_simple_queue_worker_add") not in html
    change = reverse("admin:django_simple_queue_worker_change", args=[lost.pk])
    page = admin_client.get(change).content.decode()
    assert 'name="_save"' not in page  # view only
    assert reverse("admin:django_simple_queue_worker_delete", args=[lost.pk]) in page


def test_only_a_lost_worker_can_be_deleted(admin_client):
    live, lost = WorkerFactory(), WorkerFactory(lost=True)
    url = reverse("admin:django_simple_queue_worker_delete", args=[live.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    url = reverse("admin:django_simple_queue_worker_delete", args=[lost.pk])
    admin_client.post(url, {"post": "yes"})
    assert list(Worker.objects.all()) == [live]


def test_the_action_removes_only_the_lost_among_the_selected(admin_client):
    live, lost = WorkerFactory(), WorkerFactory(lost=True)
    data = {"action": "forget_lost", "_selected_action": [live.pk, lost.pk]}
    response = admin_client.post(reverse(WORKERS), data, follow=True)
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Removed 1 lost worker."]
    assert list(Worker.objects.all()) == [live]
    assert "delete_selected" not in response.content.decode()


def test_the_dashboard_shows_idle_busy_and_lost_workers(admin_client):
    WorkerFactory(name="idle:1")
    WorkerFactory(name="busy:2")
    WorkerFactory(name="gone:3", lost=True)
    TaskFactory(running=True, worker_id="busy:2")
    html = admin_client.get(reverse("admin:django_simple_queue_task_changelist")).content.decode()
    for name, state in (("idle:1", "idle"), ("busy:2", "busy"), ("gone:3", "lost")):
        assert f'<tr data-worker="{name}" data-state="{state}">' in html
        assert f'class="dsq-badge dsq-worker-{state}">{state}</span>' in html
