"""The test settings without django-import-export, on a throwaway SQLite database."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "import_export"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(Path(tempfile.mkdtemp()) / "no-import-export.sqlite3"),
    }
}
