"""A JSON editor for task arguments: a monospace textarea with a small script that pre-fills it."""

from __future__ import annotations

import json
from typing import Any

from django import forms


class JSONEditorWidget(forms.Textarea):
    """A textarea for a JSON object; ``enqueue.js`` fills it with the chosen task's defaults."""

    template_name = "admin/django_simple_queue/widgets/json_editor.html"

    class Media:
        css = {"all": ("django_simple_queue/admin/admin.css",)}
        js = ("django_simple_queue/admin/enqueue.js",)

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        defaults = {
            "class": "vLargeTextField dsq-json",
            "rows": 12,
            "cols": 80,
            "spellcheck": "false",
        }
        super().__init__({**defaults, **(attrs or {})})

    def format_value(self, value: Any) -> str | None:
        """Show stored JSON text pretty-printed; leave text that does not parse as it was typed."""
        if value in (None, ""):
            return ""
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return value
        return json.dumps(value, indent=2, ensure_ascii=False)
