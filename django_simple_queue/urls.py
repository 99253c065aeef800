from __future__ import annotations

from django.urls import path

from django_simple_queue.health import view_health
from django_simple_queue.metrics import view_metrics
from django_simple_queue.views import view_task_status

app_name = "django_simple_queue"
urlpatterns = [
    path("task", view_task_status, name="task"),
    path("health", view_health, name="health"),
    path("metrics", view_metrics, name="metrics"),
]
