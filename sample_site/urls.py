from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from sample_site import views

urlpatterns = [
    path("", views.index, name="index"),
    path("enqueue/", views.enqueue, name="enqueue"),
    path("admin/", admin.site.urls),
    path("django_simple_queue/", include("django_simple_queue.urls")),
]
