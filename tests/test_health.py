from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from django_simple_queue.health import health_report
from django_simple_queue.models import Task
from tests.conftest import ROOT, run_python, worker_env
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db

URL = "/django_simple_queue/health"


def test_url_name():
    assert reverse("django_simple_queue:health") == URL


def test_anonymous_and_non_staff_users_are_refused(client, django_user_model):
    assert client.get(URL).status_code == 403
    user = django_user_model.objects.create_user("plain", password="pw")
    client.force_login(user)
    response = client.get(URL)
    assert response.status_code == 403
    assert "Staff only" in response.json()["detail"]


def test_inactive_staff_is_refused(client, django_user_model):
    user = django_user_model.objects.create_user("gone", password="pw", is_staff=True)
    client.force_login(user)
    user.is_active = False
    user.save()
    assert client.get(URL).status_code in (302, 403)


def test_post_is_not_allowed(admin_client):
    assert admin_client.post(URL).status_code == 405


def test_empty_queue_is_healthy(admin_client):
    response = admin_client.get(URL)
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    data = response.json()
    assert data["status"] == "ok"
    assert data["problems"] == []
    assert data["queued"] == 0 and data["running"] == 0 and data["live_workers"] == 0
    assert data["oldest_ready_age"] is None
    assert data["queues"] == [] and data["workers"] == []


def test_depth_and_oldest_ready_age_per_queue(admin_client):
    now = timezone.now()
    old = TaskFactory(queue="emails")
    Task.objects.filter(id=old.id).update(created=now - timedelta(seconds=20))
    TaskFactory(queue="emails")
    TaskFactory(queue="emails", run_after=now + timedelta(hours=1))
    reports = TaskFactory(queue="reports", run_after=now + timedelta(hours=1))
    TaskFactory(completed=True, queue="emails")
    data = admin_client.get(URL).json()
    queues = {q["queue"]: q for q in data["queues"]}
    assert queues["emails"]["depth"] == 3
    assert queues["emails"]["ready"] == 2
    assert queues["emails"]["deferred"] == 1
    assert 19 <= queues["emails"]["oldest_ready_age"] < 60
    assert queues["reports"] == {
        "queue": "reports",
        "depth": 1,
        "ready": 0,
        "deferred": 1,
        "oldest_ready_age": None,
    }
    assert data["queued"] == 4
    assert data["oldest_ready_age"] == queues["emails"]["oldest_ready_age"]
    assert reports.id  # the deferred task is counted but does not age


def test_a_deferred_task_ages_from_its_run_after():
    now = timezone.now()
    task = TaskFactory(run_after=now - timedelta(seconds=5))
    Task.objects.filter(id=task.id).update(created=now - timedelta(hours=2))
    report = health_report(now)
    assert 4.9 <= report["oldest_ready_age"] <= 5.1


def test_running_tasks_and_live_workers_from_heartbeats(admin_client, settings):
    settings.DJANGO_SIMPLE_QUEUE_STALE_AFTER = 30
    now = timezone.now()
    TaskFactory.create_batch(2, running=True, worker_id="a:1")
    TaskFactory(running=True, worker_id="b:2", heartbeat_at=now - timedelta(minutes=5))
    response = admin_client.get(URL)
    data = response.json()
    assert data["running"] == 3
    assert data["live_workers"] == 1
    workers = {w["worker"]: w for w in data["workers"]}
    assert workers["a:1"]["running"] == 2 and workers["a:1"]["live"] is True
    assert workers["b:2"]["live"] is False
    assert workers["b:2"]["last_heartbeat_age"] >= 299
    # A claim without heartbeat is a problem: the endpoint says so and answers 503.
    assert data["stale"] == 1
    assert data["status"] == "problem"
    assert response.status_code == 503
    assert "without a heartbeat" in data["problems"][0]


def test_ready_work_with_no_worker_is_a_problem(settings):
    settings.DJANGO_SIMPLE_QUEUE_STALE_AFTER = 30
    now = timezone.now()
    task = TaskFactory()
    Task.objects.filter(id=task.id).update(created=now - timedelta(minutes=2))
    report = health_report(now)
    assert report["status"] == "problem"
    assert "no live worker serves that queue" in report["problems"][0]
    # A live worker elsewhere means the queue is served, just busy.
    TaskFactory(running=True, worker_id="a:1")
    assert health_report(now)["status"] == "ok"


def test_failed_and_completed_in_the_last_hour():
    now = timezone.now()
    TaskFactory.create_batch(3, failed=True)
    TaskFactory(completed=True)
    TaskFactory(failed=True, finished_at=now - timedelta(hours=2))
    report = health_report(now)
    assert report["failed_last_hour"] == 3
    assert report["completed_last_hour"] == 1


def test_health_without_the_auth_app_is_404_and_never_imports_the_admin(tmp_path):
    # A real process with the lean worker settings: no auth, no admin, no URLconf of the project.
    (tmp_path / "lean_settings.py").write_text(
        "from tests.settings import *\n"
        "INSTALLED_APPS = ['django.contrib.contenttypes', 'django_simple_queue', 'tests.apps.TestsConfig']\n"
        "MIDDLEWARE = []\nTEMPLATES = []\nROOT_URLCONF = 'django_simple_queue.urls'\n"
    )
    script = (
        "import sys, django; django.setup()\n"
        "from django.test import Client\n"
        "import django_simple_queue.urls\n"
        "status = Client().get('/health').status_code\n"
        "print(status, 'django.contrib.admin' in sys.modules, 'admin_ext' in sys.modules)\n"
    )
    env = worker_env(
        DJANGO_SETTINGS_MODULE="lean_settings",
        PYTHONPATH=f"{tmp_path}:{ROOT}",
    )
    assert run_python(script, env).split() == ["404", "False", "False"]


def test_an_idle_worker_serves_its_queues_only(settings):
    from tests.factories import WorkerFactory

    settings.DJANGO_SIMPLE_QUEUE_STALE_AFTER = 30
    now = timezone.now()
    task = TaskFactory(queue="mail")
    Task.objects.filter(id=task.id).update(created=now - timedelta(minutes=2))
    WorkerFactory(name="other:1", queues=["reports"])
    report = health_report(now)
    assert report["live_workers"] == 1
    assert report["workers"][0]["state"] == "idle"
    assert report["problems"] == [
        "A ready task of queue 'mail' has waited 120s and no live worker serves that queue: "
        "is a worker running for it?"
    ]
    WorkerFactory(name="any:2")  # no --queue: serves every queue
    assert health_report(now)["status"] == "ok"
