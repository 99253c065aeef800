from django.db import models


class Execution(models.Model):
    """One row per run of ``tests.tasks.record``: executions counted outside the queue."""

    key = models.CharField(max_length=100, db_index=True)
    pid = models.IntegerField(null=True)
    at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key
