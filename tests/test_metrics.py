from __future__ import annotations

import sys
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from django_simple_queue import stats
from django_simple_queue.models import Task
from tests.factories import ScheduleFactory, TaskFactory, WorkerFactory

pytestmark = pytest.mark.django_db

URL = "/django_simple_queue/metrics"
TOKEN = "s3cret-token-of-32-characters-xx"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(metric name, sorted labels): value} of a Prometheus text exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client, **headers) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get(URL, headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def test_url_name():
    assert reverse("django_simple_queue:metrics") == URL


def test_values_of_a_known_state(admin_client):
    now = timezone.now()
    oldest_task = TaskFactory(queue="mail")
    # ``created`` is auto_now_add: set after the insert.
    Task.objects.filter(pk=oldest_task.pk).update(created=now - timedelta(minutes=10))
    TaskFactory(queue="mail")
    # Deferred: queued but not waiting yet, so not the oldest.
    TaskFactory(queue="mail", run_after=now + timedelta(hours=1))
    TaskFactory(running=True)
    for _ in range(3):
        TaskFactory(completed=True)
    TaskFactory(failed=True, queue="mail")
    TaskFactory(cancelled=True)
    TaskFactory.create_batch(2, status=Task.WAITING, queue="mail")
    WorkerFactory()
    WorkerFactory(lost=True)
    WorkerFactory(lost=True)
    ScheduleFactory(name="late", next_run_at=now - timedelta(seconds=90))
    ScheduleFactory(name="ahead", next_run_at=now + timedelta(hours=1))
    ScheduleFactory(name="off", enabled=False, next_run_at=now - timedelta(hours=1))

    values = scrape(admin_client)

    def tasks(queue: str, status: str) -> float:
        return values[("django_simple_queue_tasks", (("queue", queue), ("status", status)))]

    assert tasks("mail", "queued") == 3
    assert tasks("default", "in_progress") == 1
    assert tasks("default", "completed") == 3
    assert tasks("mail", "failed") == 1
    assert tasks("default", "cancelled") == 1
    assert tasks("mail", "waiting") == 2
    assert ("django_simple_queue_tasks", (("queue", "mail"), ("status", "completed"))) not in values
    oldest = values[("django_simple_queue_oldest_queued_seconds", (("queue", "mail"),))]
    assert 600 <= oldest < 660
    workers = {
        state: values[("django_simple_queue_workers", (("state", state),))]
        for state in ("idle", "busy", "lost")
    }
    # The running task's claim (worker "elsewhere:1", no row) is a busy worker of its own.
    assert workers == {"idle": 1, "busy": 1, "lost": 2}
    late = values[("django_simple_queue_schedule_lateness_seconds", (("schedule", "late"),))]
    assert 90 <= late < 150
    ahead = values[("django_simple_queue_schedule_lateness_seconds", (("schedule", "ahead"),))]
    assert ahead == 0
    assert ("django_simple_queue_schedule_lateness_seconds", (("schedule", "off"),)) not in values


def test_an_empty_queue_has_every_worker_state_at_zero(admin_client):
    values = scrape(admin_client)
    assert values[("django_simple_queue_workers", (("state", "lost"),))] == 0
    assert not [key for key in values if key[0] == "django_simple_queue_tasks"]


@pytest.mark.postgres
def test_finished_counts_are_estimated_on_a_large_table(admin_client, monkeypatch):
    monkeypatch.setattr(stats, "EXACT_BELOW", 50)
    now = timezone.now()
    Task.objects.bulk_create(
        Task(task="tests.tasks.add", args="{}", status=Task.COMPLETED, finished_at=now)
        for _ in range(400)
    )
    TaskFactory(queue="mail")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE django_simple_queue_task")
    counts = stats.task_counts()
    # Estimated for each known queue: "default" has them all, "mail" (known from its queued
    # task) none; an estimate never says fewer than EXACT_BELOW.
    assert abs(counts["default", Task.COMPLETED] - 400) < 80
    assert counts["mail", Task.COMPLETED] == 0
    assert counts["mail", Task.QUEUED] == 1


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": f"Bearer {TOKEN}"}, 200),
        ({"Authorization": f"bearer {TOKEN}"}, 200),
        ({"Authorization": "Bearer wrong-token-of-32-characters-xxx"}, 403),
        ({"Authorization": f"Basic {TOKEN}"}, 403),
    ],
)
def test_token(client, headers, status):
    with override_settings(DJANGO_SIMPLE_QUEUE_METRICS_TOKEN=TOKEN):
        response = client.get(URL, headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")
    if status == 200:
        assert b"django_simple_queue_workers" in response.content


def test_staff_without_a_token_set(admin_client):
    assert admin_client.get(URL).status_code == 200


def test_without_a_token_set_others_get_404(client, django_user_model):
    assert client.get(URL).status_code == 404
    assert client.get(URL, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    client.force_login(django_user_model.objects.create_user("plain", password="pw"))
    assert client.get(URL).status_code == 404


def test_a_user_who_is_not_staff_gets_403_when_a_token_is_set(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("plain", password="pw"))
    with override_settings(DJANGO_SIMPLE_QUEUE_METRICS_TOKEN=TOKEN):
        assert client.get(URL).status_code == 403


def test_an_inactive_staff_user_is_not_staff(client, django_user_model):
    user = django_user_model.objects.create_user("gone", password="pw", is_staff=True)
    user.is_active = False
    user.save()
    client.force_login(user)
    assert client.get(URL).status_code == 404


def test_post_is_not_allowed(admin_client):
    assert admin_client.post(URL).status_code == 405


def test_without_prometheus_client_the_answer_says_what_to_install(admin_client, monkeypatch):
    # None in sys.modules: the import fails as it does when the package is not installed.
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    response = admin_client.get(URL)
    assert response.status_code == 501
    assert b"django-simple-queue[metrics]" in response.content
