from django.apps import AppConfig


class TestsConfig(AppConfig):
    name = "tests"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from tests import receivers  # noqa: F401
