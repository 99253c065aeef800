"""The change list's date drill-down without ``SELECT DISTINCT date_trunc(…)`` over the table.

Django's ``date_hierarchy`` tag lists the years, months or days that have rows with a DISTINCT
query over every matching row: a full scan of a month of a busy queue. Here the choices are the
periods between the first and the last matching row, found with MIN/MAX (two index lookups on
``created``); a period in between without tasks shows an empty list.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime
from typing import Any

from django.contrib.admin.views.main import ChangeList
from django.db.models import Max, Min
from django.utils import formats, timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _


def _local(value: datetime | date | None) -> date | None:
    if isinstance(value, datetime):
        return (timezone.localtime(value) if timezone.is_aware(value) else value).date()
    return value


def date_hierarchy(cl: ChangeList) -> dict[str, Any]:
    """The context of ``admin/date_hierarchy.html`` for ``cl``, as Django's tag builds it."""
    if not cl.date_hierarchy:
        return {"show": False}
    name = cl.date_hierarchy
    year_field, month_field, day_field = f"{name}__year", f"{name}__month", f"{name}__day"
    year, month, day = (cl.params.get(f) for f in (year_field, month_field, day_field))

    def link(filters: dict[str, Any]) -> str:
        return cl.get_query_string(filters, [f"{name}__"])

    bounds = cl.queryset.aggregate(first=Min(name), last=Max(name))
    first, last = _local(bounds["first"]), _local(bounds["last"])
    if not (year or month or day) and first and last and first.year == last.year:
        year = first.year
        if first.month == last.month:
            month = first.month
    if year and month and day:
        chosen = date(int(year), int(month), int(day))
        return {
            "show": True,
            "back": {
                "link": link({year_field: year, month_field: month}),
                "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT")),
            },
            "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
        }
    if not (first and last):
        return {"show": True, "back": None, "choices": []}
    if year and month:
        y, m = int(year), int(month)
        days = (
            range(first.day, last.day + 1)
            if (first.year, first.month) == (last.year, last.month) == (y, m)
            else range(1, calendar.monthrange(y, m)[1] + 1)
        )
        return {
            "show": True,
            "back": {"link": link({year_field: year}), "title": str(year)},
            "choices": [
                {
                    "link": link({year_field: year, month_field: month, day_field: d}),
                    "title": capfirst(formats.date_format(date(y, m, d), "MONTH_DAY_FORMAT")),
                }
                for d in days
            ],
        }
    if year:
        y = int(year)
        months = (
            range(first.month, last.month + 1) if first.year == last.year == y else range(1, 13)
        )
        return {
            "show": True,
            "back": {"link": link({}), "title": _("All dates")},
            "choices": [
                {
                    "link": link({year_field: year, month_field: m}),
                    "title": capfirst(formats.date_format(date(y, m, 1), "YEAR_MONTH_FORMAT")),
                }
                for m in months
            ],
        }
    return {
        "show": True,
        "back": None,
        "choices": [
            {"link": link({year_field: str(y)}), "title": str(y)}
            for y in range(first.year, last.year + 1)
        ],
    }
