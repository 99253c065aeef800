"""Argument values checked against type hints: one accepted and one refused value per family."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Annotated, Any, Literal, NewType, Optional, Union

import pytest

from django_simple_queue import callables, hints
from django_simple_queue.exceptions import InvalidTaskArguments
from tests import tasks


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


UserId = NewType("UserId", int)


class Project:
    """A class of the project's own: nothing JSON gives can be judged against it."""


# (annotation, a value that fits, a value that does not, the message's "must be …, not …").
FAMILIES: list[tuple[Any, Any, Any, str]] = [
    (int, 3, True, "must be int, not bool"),
    (int, -1, None, "must be int, not null"),
    (int, 2, 2.5, "must be int, not float"),
    (float, 2, "2.0", "must be float, not str"),
    (float, 2.5, False, "must be float, not bool"),
    (str, "x", 1, "must be str, not int"),
    (bool, False, 0, "must be bool, not int"),
    (dict, {"a": 1}, [1], "must be dict, not list"),
    (list, [1, "a"], {"a": 1}, "must be list, not dict"),
    (tuple, [1, 2], "12", "must be list, not str"),
    (type(None), None, 0, "must be null, not int"),
    (None, None, "", "must be null, not str"),
    (Optional[int], None, "1", "must be Optional[int], not str"),  # noqa: UP045
    (int | None, 4, "4", "must be int | None, not str"),
    (Union[int, str], "a", 1.5, "must be Union[int, str], not float"),  # noqa: UP007
    (list[int], [1, 2], [1, "2"], "'x[1]' must be int, not str"),
    (list[list[int]], [[1]], [[1], [None]], "'x[1][0]' must be int, not null"),
    (dict[str, int], {"a": 1}, {"a": 1, "b": "2"}, "'x['b']' must be int, not str"),
    (dict[str, int], {}, [], "must be dict[str, int], not list"),
    (tuple[int, str], [1, "a"], [1, "a", 2], "must be tuple[int, str] (2 items), not list"),
    (tuple[int, ...], [1, 2, 3], [1, "a"], "'x[1]' must be int, not str"),
    (Literal["a", 1], 1, True, "must be one of 'a', 1, not True"),
    (Literal["a", "b"], "b", "c", "must be one of 'a', 'b', not 'c'"),
    (Size, "s", "SMALL", "must be one of 's', 'l', not 'SMALL'"),
    (Level, 2, 3, "must be one of 1, 2, not 3"),
    (date, "2025-06-01", "2025-06-01T10:00", "ISO 8601 date string (YYYY-MM-DD), not '2025"),
    (date, "2025-06-01", 20250601, "must be an ISO 8601 date string (YYYY-MM-DD), not int"),
    (datetime, "2025-06-01T10:00:00+02:00", "June 1st", "datetime string, not 'June 1st'"),
    (Annotated[int, "meta"], 1, "1", "must be int, not str"),
    (UserId, 7, "7", "must be int, not str"),
    (list[int] | None, None, [None], "'x[0]' must be int, not null"),
]


@pytest.mark.parametrize(("annotation", "good", "bad", "message"), FAMILIES)
def test_each_family_accepts_a_fitting_value_and_names_a_wrong_one(annotation, good, bad, message):
    check = hints.checker(annotation)
    assert check(good) is None
    problem = check(bad)
    assert problem is not None
    assert message in problem.message("x")


@pytest.mark.parametrize(
    "annotation",
    [Any, object, Project, Optional[Any], bytes, int | Project],  # noqa: UP045
)
def test_what_cannot_be_judged_accepts_anything(annotation):
    check = hints.checker(annotation)
    for value in (None, 1, "x", [1], {"a": None}, True):
        assert check(value) is None


def test_containers_of_anything_check_the_container_only():
    for annotation, value, wrong in ((list[Any], [None, "x"], {}), (dict[str, Any], {"a": []}, [])):
        check = hints.checker(annotation)
        assert check(value) is None and check(wrong) is not None


def test_string_annotations_are_resolved_in_the_functions_module():
    # tests/tasks.py says ``from __future__ import annotations``: its hints are strings.
    assert callables.signature(tasks.monthly).parameters["month"].annotation == "int"
    callables.bind(tasks.monthly, {"month": 6})
    with pytest.raises(InvalidTaskArguments, match=r"^argument 'month' must be int, not null\.$"):
        callables.bind(tasks.monthly, {"month": None})
    with pytest.raises(InvalidTaskArguments, match="argument 'note' must be str, not int"):
        callables.bind(tasks.monthly, {"month": 6, "note": 1})


def test_an_annotation_that_does_not_resolve_accepts_anything():
    # Decimal is imported only under TYPE_CHECKING in tests/tasks.py.
    for value in ("1.5", 1.5, None, [1]):
        callables.bind(tasks.unresolvable, {"amount": value})

    # The rest of a function's hints are still checked when one does not resolve.
    def partly(a: int, b: Missing) -> None:  # noqa: F821
        pass

    with pytest.raises(InvalidTaskArguments, match="argument 'a' must be int"):
        callables.bind(partly, {"a": "1", "b": object()})
    callables.bind(partly, {"a": 1, "b": object()})


def test_unannotated_parameters_take_any_json():
    for value in (None, "x", [1], {"k": [None]}):
        callables.bind(tasks.add, {"a": value})


def test_the_default_fits_and_so_does_none_where_it_is_the_default():
    def f(when: int = None, mode: int = "auto") -> None:  # type: ignore[assignment]  # noqa: RUF013
        pass

    callables.bind(f, {"when": None, "mode": "auto"})
    with pytest.raises(InvalidTaskArguments, match="argument 'mode' must be int, not str"):
        callables.bind(f, {"mode": "manual"})


def test_keyword_arguments_of_kwargs_and_callable_objects_are_checked():
    def f(n: int, **rest: int) -> None:
        pass

    callables.bind(f, {"n": 1, "other": "anything"})  # **rest's values are not judged

    class Callable:
        def __call__(self, n: int) -> int:
            return n

    with pytest.raises(InvalidTaskArguments, match="argument 'n' must be int, not str"):
        callables.bind(Callable(), {"n": "1"})


def test_hints_are_worked_out_once_per_function():
    sig = callables.signature(tasks.typed)
    assert sig is not None
    assert hints.hints_of(tasks.typed, sig) is hints.hints_of(tasks.typed, sig)


def test_describe_fills_only_defaults_and_shows_resolved_annotations():
    info = callables.describe("tests.tasks.monthly")
    assert info["signature"] == "monthly(month: int, note: str = '') -> str"
    assert info["defaults"] == {"note": ""}  # no null for the required month
    assert info["params"] == [
        {
            "name": "month",
            "kind": "int",
            "annotation": "int",
            "required": True,
            "nullable": False,
            "choices": [],
        },
        {
            "name": "note",
            "kind": "str",
            "annotation": "str",
            "required": False,
            "nullable": False,
            "choices": [],
            "default": "",
            "default_text": '""',
        },
    ]


def test_describe_gives_each_parameter_the_kind_of_its_field():
    params = {p["name"]: p for p in callables.describe("tests.tasks.typed")["params"]}
    kinds = {name: p["kind"] for name, p in params.items()}
    assert kinds == {
        "count": "int",
        "ratio": "float",
        "name": "str",
        "flag": "bool",
        "day": "date",
        "at": "datetime",
        "size": "choice",
        "colour": "choice",
        "tags": "json",
        "options": "json",
    }
    assert params["size"]["choices"] == ["small", "large"]
    assert params["colour"]["choices"] == ["red", "green"]
    assert params["day"]["nullable"] and not params["count"]["nullable"]
    # An Enum default JSON cannot hold is left out of the pre-filled values (the function's applies).
    assert "colour" not in callables.describe("tests.tasks.typed")["defaults"]
    assert params["colour"]["default_text"] == "Colour.RED"
