"""Prepare the demo database: an admin user and one task of each demo, once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.migrations.executor import MigrationExecutor

from django_simple_queue.models import Task
from django_simple_queue.utils import create_task
from sample_site.tasks import DEMOS

USERNAME = "admin"
PASSWORD = "admin"  # a local demo's well-known login; demo_setup is not for real deployments
ENQUEUED_BY = "demo_setup"


class Command(BaseCommand):
    help = (
        "Create the demo superuser admin/admin (when there is no superuser yet) and one queued task "
        "of each demo (when demo_setup has not queued any yet). Safe to run again."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        pending = self.pending_migrations()
        if pending:
            raise CommandError(
                f"The database has {len(pending)} unapplied migration(s), e.g. {pending[0]}; "
                "run 'python manage.py migrate' first."
            )
        with transaction.atomic():
            self.create_superuser()
            self.create_tasks()

    def pending_migrations(self) -> list[str]:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]

    def create_superuser(self) -> None:
        user_model = get_user_model()
        if user_model._default_manager.filter(is_superuser=True).exists():
            self.stdout.write("A superuser exists already; not creating one.")
            return
        user_model._default_manager.create_superuser(
            username=USERNAME, email="admin@example.com", password=PASSWORD
        )
        self.stdout.write(f"Created the superuser {USERNAME} (password {PASSWORD}).")

    def create_tasks(self) -> None:
        if Task.objects.filter(enqueued_by=ENQUEUED_BY).exists():
            self.stdout.write("Sample tasks exist already; not adding more.")
            return
        for demo in DEMOS.values():
            create_task(demo.task, demo.make_args(), enqueued_by=ENQUEUED_BY, **demo.options)
        self.stdout.write(f"Queued {len(DEMOS)} sample tasks, one of each demo.")
