"""``DATABASE_URL`` to a Django ``DATABASES`` entry, with the standard library only."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql"}


def _host_and_port(netloc: str) -> tuple[str, str]:
    """Split ``user:pass@host:port``'s host part; keep a percent-encoded socket path intact."""
    hostinfo = netloc.rpartition("@")[2]
    if hostinfo.startswith("["):  # an IPv6 address: [::1]:5432
        host, _, rest = hostinfo[1:].partition("]")
        return host, rest.removeprefix(":")
    host, _, port = hostinfo.partition(":")
    return unquote(host), port


def database_from_url(url: str) -> dict[str, Any]:
    """Parse ``postgres://user:password@host:port/name?sslmode=require`` or ``sqlite:///path``.

    Query parameters of a PostgreSQL URL become ``OPTIONS`` (libpq parameters such as ``sslmode``),
    except ``host``, which may name a Unix socket directory as libpq allows.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:///relative.sqlite3 and sqlite:////absolute/path.sqlite3, as dj-database-url reads them.
        path = unquote(parts.path)[1:] if parts.path.startswith("/") else unquote(parts.path)
        if not path:
            raise ValueError(
                f"DATABASE_URL {url!r} names no SQLite file; use sqlite:///demo.sqlite3."
            )
        return sqlite_database(Path(path))
    if scheme not in POSTGRES_SCHEMES:
        raise ValueError(
            f"DATABASE_URL scheme {parts.scheme!r} is not supported; "
            "use postgres://user:password@host:5432/name or sqlite:///path."
        )
    host, port = _host_and_port(parts.netloc)
    options = dict(parse_qsl(parts.query))
    host = options.pop("host", host)
    name = unquote(parts.path.removeprefix("/"))
    if not name:
        raise ValueError(f"DATABASE_URL {url!r} names no database; add it as the path: …/dbname.")
    if port and not port.isdigit():
        raise ValueError(f"DATABASE_URL {url!r} has port {port!r}; a port is a number.")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": port,
        "OPTIONS": options,
    }


def sqlite_database(path: Path) -> dict[str, Any]:
    """SQLite set up for a web process and a worker sharing one file."""
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            # Writers queue for the lock instead of failing with "database is locked" ...
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            # ... and readers (the status page) are not blocked by the worker's writes.
            "init_command": "PRAGMA journal_mode=WAL;",
        },
    }
