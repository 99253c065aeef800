"""The PostgreSQL driver Django uses, psycopg 3 or psycopg2: what differs between them, decided once.

The queue's own statements (claim, batch finish, INSERT + NOTIFY) are written once, for psycopg 3:
values travel apart from the SQL, the hot ones as ``%(name)b`` (binary, measurably faster than
text). psycopg2 binds on the client and knows only ``%s``, so its cursor runs the same statements
with ``%(name)s``. COPY takes rows from psycopg 3 and a text stream from psycopg2; LISTEN is the
same SQL on both, reading what arrived is not.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

# A binary placeholder of psycopg 3; not one whose % is itself escaped (%%).
_BINARY_PLACEHOLDER = re.compile(r"(?<!%)%\((\w+)\)b")
# COPY's text format: these characters are written as escapes, NULL as \N.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class Driver(Protocol):
    def cursor(self, connection: Any) -> Any:
        """A cursor on the raw ``connection`` that runs the queue's statements."""

    def copy(self, cursor: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run ``COPY … FROM STDIN`` (text format) with ``rows`` of Python values."""

    def drain(self, connection: Any) -> int:
        """Consume the notifications that arrived on ``connection``; how many there were."""


class Psycopg3:
    def cursor(self, connection: Any) -> Any:
        # Server-side parameters: nothing is quoted in Python (Django's client-side binding
        # quotes each value, each element of an array too). Nothing is prepared: Django sets
        # psycopg's prepare_threshold to None unless the database's OPTIONS set it.
        import psycopg

        return psycopg.Cursor(connection)

    def copy(self, cursor: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    def drain(self, connection: Any) -> int:
        pgconn = connection.pgconn
        pgconn.consume_input()
        count = 0
        while pgconn.notifies() is not None:
            count += 1
        return count


class Psycopg2:
    def cursor(self, connection: Any) -> Any:
        return connection.cursor(cursor_factory=_psycopg2_cursor_class())

    def copy(self, cursor: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        text = "".join("\t".join(map(_copy_text, row)) + "\n" for row in rows)
        cursor.copy_expert(sql, io.StringIO(text))

    def drain(self, connection: Any) -> int:
        connection.poll()
        count = len(connection.notifies)
        connection.notifies.clear()
        return count


@functools.cache
def _psycopg2_cursor_class() -> type:
    import psycopg2.extensions

    class Cursor(psycopg2.extensions.cursor):
        """Runs the queue's statements, written with psycopg 3's ``%(name)b``, as ``%(name)s``."""

        def execute(self, query: str, vars: Any = None) -> None:
            super().execute(plain_placeholders(query), vars)

    return Cursor


def plain_placeholders(sql: str) -> str:
    """``sql`` with psycopg 3's binary placeholders ``%(name)b`` written as ``%(name)s``."""
    return _BINARY_PLACEHOLDER.sub(r"%(\1)s", sql)


def _copy_text(value: Any) -> str:
    """One value in COPY's text format (the values of a Task row: None, bool, str, numbers,
    UUIDs, datetimes)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value).translate(_COPY_ESCAPES)


@functools.cache
def driver() -> Driver:
    """The driver of Django's PostgreSQL backend (psycopg 3 where both are installed)."""
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return Psycopg3() if is_psycopg3 else Psycopg2()
