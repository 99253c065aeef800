"""Keeping a task's output, log and error within MAX_OUTPUT_SIZE, with a visible marker where cut;
the short form of an error."""

from __future__ import annotations

TRUNCATION_MARKER = "\n… [truncated: more than {limit} bytes]"


def truncate(text: str, limit: int, *, whole: int | None = None) -> str:
    """``text`` cut to ``limit`` bytes of UTF-8, with a visible marker when cut.

    The marker names ``whole``, when ``text`` is the last part that fits of a longer output.
    """
    data = text.encode()
    if len(data) <= limit:
        return text
    marker = TRUNCATION_MARKER.format(limit=limit if whole is None else whole)
    return data[:limit].decode("utf-8", "ignore") + marker


def capped(text: str, written: int, limit: int) -> str | None:
    """What to keep of ``text``, streamed after ``written`` bytes of an output capped at
    ``limit`` bytes: all of it, the part that fits with the marker, or None past the cap."""
    if written > limit:
        return None
    if written + len(text.encode()) > limit:
        return truncate(text, max(limit - written, 0), whole=limit)
    return text


def error_summary(error: str | None) -> str:
    """The last non-empty line of a traceback: the exception and its message."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""
