"""Output kept within MAX_OUTPUT_SIZE, cut visibly."""

from __future__ import annotations

from django_simple_queue.output import TRUNCATION_MARKER, capped, truncate


def test_truncate_cuts_at_a_byte_limit_without_splitting_a_character():
    assert truncate("short", 10) == "short"
    assert truncate("ééééééé", 11) == "ééééé" + TRUNCATION_MARKER.format(limit=11)
    assert truncate("abcdef", 3, whole=100) == "abc\n… [truncated: more than 100 bytes]"


def test_capped_keeps_all_then_the_part_that_fits_then_nothing():
    assert capped("a" * 60, 0, 100) == "a" * 60
    assert capped("b" * 60, 60, 100) == "b" * 40 + "\n… [truncated: more than 100 bytes]"
    assert capped("c" * 60, 120, 100) is None
