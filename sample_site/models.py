"""The demo's own table: calls to the pretend flaky API, so that its task knows its attempt."""

from __future__ import annotations

from django.db import models


class ApiCall(models.Model):
    """One call of ``sample_site.tasks.call_flaky_api`` for ``key``."""

    key = models.CharField(max_length=64, db_index=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.key} at {self.created:%H:%M:%S}"
