"""The PostgreSQL driver in use, and what the queue does differently on each."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import pytest

from django_simple_queue import pgdriver


@pytest.mark.postgres
@pytest.mark.skipif(
    "DSQ_EXPECT_DRIVER" not in os.environ, reason="DSQ_EXPECT_DRIVER names the driver of this run"
)
def test_the_run_uses_the_driver_it_is_meant_to():
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    expected = os.environ["DSQ_EXPECT_DRIVER"]
    assert expected in {"psycopg", "psycopg2"}
    assert is_psycopg3 == (expected == "psycopg")
    kind = pgdriver.Psycopg3 if expected == "psycopg" else pgdriver.Psycopg2
    assert isinstance(pgdriver.driver(), kind)


def test_psycopg2_runs_binary_placeholders_as_plain_ones():
    sql = "SET a = %(a)b, b = %(b_c)b WHERE c = ANY(%(c)b::uuid[]) AND d LIKE '%%(e)b' AND f = %s"
    assert pgdriver.plain_placeholders(sql) == (
        "SET a = %(a)s, b = %(b_c)s WHERE c = ANY(%(c)s::uuid[]) AND d LIKE '%%(e)b' AND f = %s"
    )


def test_copy_text_escapes_what_copy_reads_as_separators():
    assert pgdriver._copy_text(None) == "\\N"
    assert [pgdriver._copy_text(v) for v in (True, False, 3, 0.5)] == ["t", "f", "3", "0.5"]
    assert pgdriver._copy_text("a\tb\nc\rd\\N") == "a\\tb\\nc\\rd\\\\N"
    some_id = uuid.uuid4()
    assert pgdriver._copy_text(some_id) == str(some_id)
    assert pgdriver._copy_text(datetime(2024, 5, 1, 12, tzinfo=UTC)) == "2024-05-01 12:00:00+00:00"
