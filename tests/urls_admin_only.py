"""A project that installs the admin but not django_simple_queue.urls."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
