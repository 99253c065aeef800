"""Checking JSON argument values against a task function's type hints.

Each annotation is turned once, per function, into a small checker: a function of the value that
returns None when the value fits, or a ``Mismatch`` saying where and what was expected. What cannot
be judged (a class of the project's own, a ``Protocol``, an annotation that does not resolve) accepts
anything: a check that refuses a value the function would take is worse than none.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Checker = Callable[[Any], "Mismatch | None"]


@dataclass(frozen=True)
class Mismatch:
    """A value that does not fit: ``where`` inside the argument (``""``, ``[1]``, ``['k']``)."""

    where: str
    expected: str
    value: Any
    show_value: bool = False

    def message(self, name: str) -> str:
        got = repr(self.value) if self.show_value else json_type(self.value)
        return f"argument '{name}{self.where}' must be {self.expected}, not {got}."


@dataclass(frozen=True)
class Param:
    """What forms need to know of one parameter's annotation (see ``describe``)."""

    kind: str  # int, float, bool, str, date, datetime, choice or json
    text: str  # the annotation as written, resolved: "int", "list[str] | None"
    choices: tuple[Any, ...] = ()
    nullable: bool = False


def json_type(value: Any) -> str:
    """A value's type as the error names it: JSON's null, else the Python type JSON gives."""
    return "null" if value is None else type(value).__name__


def _anything(value: Any) -> None:
    return None


def _exact(*kinds: type, name: str) -> Checker:
    # bool is an int subclass, but True is not a number anyone meant.
    def check(value: Any) -> Mismatch | None:
        if isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds):
            return None
        return Mismatch("", name, value)

    return check


def _none(value: Any) -> Mismatch | None:
    return None if value is None else Mismatch("", "null", value)


def _iso(kind: type[datetime.date], name: str) -> Checker:
    def check(value: Any) -> Mismatch | None:
        if not isinstance(value, str):
            return Mismatch("", name, value)
        try:
            parsed = kind.fromisoformat(value)
        except ValueError:
            return Mismatch("", name, value, show_value=True)
        # date.fromisoformat takes only dates; datetime's takes a bare date as well.
        if kind is datetime.date and isinstance(parsed, datetime.datetime):
            return Mismatch("", name, value, show_value=True)
        return None

    return check


def _one_of(choices: tuple[Any, ...], name: str) -> Checker:
    def check(value: Any) -> Mismatch | None:
        # By type as well as value: 1 == True == 1.0, but Literal[1] does not mean true.
        if any(type(value) is type(c) and value == c for c in choices):
            return None
        return Mismatch("", name, value, show_value=True)

    return check


def _union(checks: list[Checker], name: str) -> Checker:
    def check(value: Any) -> Mismatch | None:
        problems = [c(value) for c in checks]
        if any(p is None for p in problems):
            return None
        # One alternative failed deeper than its top: that says more than the whole union.
        deep = [p for p in problems if p is not None and p.where]
        return deep[0] if len(deep) == 1 else Mismatch("", name, value)

    return check


def _items(item: Checker, name: str) -> Checker:
    def check(value: Any) -> Mismatch | None:
        if not isinstance(value, (list, tuple)):
            return Mismatch("", name, value)
        for i, element in enumerate(value):
            problem = item(element)
            if problem is not None:
                return Mismatch(f"[{i}]{problem.where}", *_rest(problem))
        return None

    return check


def _tuple(items: list[Checker], name: str) -> Checker:
    def check(value: Any) -> Mismatch | None:
        if not isinstance(value, (list, tuple)):
            return Mismatch("", name, value)
        if len(value) != len(items):
            return Mismatch("", f"{name} ({len(items)} items)", value)
        for i, (c, element) in enumerate(zip(items, value, strict=True)):
            problem = c(element)
            if problem is not None:
                return Mismatch(f"[{i}]{problem.where}", *_rest(problem))
        return None

    return check


def _values(item: Checker, name: str) -> Checker:
    def check(value: Any) -> Mismatch | None:
        if not isinstance(value, dict):
            return Mismatch("", name, value)
        for key, element in value.items():
            problem = item(element)
            if problem is not None:
                return Mismatch(f"[{key!r}]{problem.where}", *_rest(problem))
        return None

    return check


def _rest(problem: Mismatch) -> tuple[str, Any, bool]:
    return problem.expected, problem.value, problem.show_value


def text(annotation: Any) -> str:
    """An annotation as a person writes it: ``int``, ``list[str] | None``, ``Colour``."""
    if isinstance(annotation, str):
        return annotation
    if annotation is inspect.Parameter.empty:
        return ""
    if annotation is type(None) or annotation is None:
        return "None"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__qualname__
    return inspect.formatannotation(annotation).replace("typing.", "")


BUILTINS: dict[Any, tuple[Checker, str]] = {
    int: (_exact(int, name="int"), "int"),
    float: (_exact(int, float, name="float"), "float"),
    str: (_exact(str, name="str"), "str"),
    bool: (_exact(bool, name="bool"), "bool"),
    dict: (_exact(dict, name="dict"), "json"),
    list: (_exact(list, tuple, name="list"), "json"),
    tuple: (_exact(list, tuple, name="list"), "json"),
    type(None): (_none, "json"),
    None: (_none, "json"),
    datetime.datetime: (_iso(datetime.datetime, "an ISO 8601 datetime string"), "datetime"),
    datetime.date: (_iso(datetime.date, "an ISO 8601 date string (YYYY-MM-DD)"), "date"),
}
UNIONS = (typing.Union, types.UnionType)


def checker(annotation: Any) -> Checker:
    """The checker of one resolved annotation."""
    return _compile(annotation)[0]


def _compile(annotation: Any) -> tuple[Checker, Param]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    name = text(annotation)
    if origin is typing.Annotated:
        return _compile(args[0])
    if annotation is typing.Any or annotation is object or annotation is inspect.Parameter.empty:
        return _anything, Param("json", name)
    if annotation in BUILTINS:
        check, kind = BUILTINS[annotation]
        return check, Param(kind, name)
    if origin is None and isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        choices = tuple(member.value for member in annotation)
        return _one_of(choices, f"one of {_listed(choices)}"), Param("choice", name, choices)
    if origin is typing.Literal:
        return _one_of(args, f"one of {_listed(args)}"), Param("choice", name, args)
    if origin in UNIONS:
        compiled = [_compile(arg) for arg in args]
        if any(check is _anything for check, _ in compiled):
            return _anything, Param("json", name)
        others = [
            param for arg, (_, param) in zip(args, compiled, strict=True) if arg is not type(None)
        ]
        nullable = len(others) < len(args)
        param = Param("json", name, nullable=nullable)
        if len(others) == 1:
            param = Param(others[0].kind, name, others[0].choices, nullable)
        return _union([check for check, _ in compiled], name), param
    if origin in (list, tuple) and args:
        if origin is tuple and (len(args) != 2 or args[1] is not Ellipsis):
            if args == ((),):  # tuple[()]
                return _tuple([], name), Param("json", name)
            return _tuple([checker(arg) for arg in args], name), Param("json", name)
        item = checker(args[0])
        if item is _anything:
            return BUILTINS[origin][0], Param("json", name)
        return _items(item, name), Param("json", name)
    if origin is dict and len(args) == 2:
        # JSON keys are strings: only the values can be judged.
        item = checker(args[1])
        if item is _anything:
            return BUILTINS[dict][0], Param("json", name)
        return _values(item, name), Param("json", name)
    if origin in (list, dict, tuple):  # list, dict or tuple with arguments not handled above
        return BUILTINS[origin][0], Param("json", name)
    supertype = getattr(annotation, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        check, param = _compile(supertype)
        return check, Param(param.kind, name, param.choices, param.nullable)
    return _anything, Param("json", name)


def _listed(choices: tuple[Any, ...]) -> str:
    return ", ".join(repr(c) for c in choices)


@dataclass(frozen=True)
class Hints:
    """A function's checkers and parameter descriptions, by parameter name."""

    checks: Mapping[str, Checker]
    params: Mapping[str, Param]
    defaults: Mapping[str, Any]
    annotations: Mapping[str, Any]  # resolved where they could be, with "return"

    def check(self, kwargs: Mapping[str, Any]) -> str | None:
        """The first value that does not fit its parameter's hint, said for a person; else None."""
        for key, value in kwargs.items():
            check = self.checks.get(key)
            if check is None:
                continue
            problem = check(value)
            if problem is None:
                continue
            default = self.defaults.get(key, inspect.Parameter.empty)
            # The function's own default always fits, and so does None where it is the default.
            if value is default or (type(value) is type(default) and value == default):
                continue
            return problem.message(key)
        return None


def resolved(func: Callable[..., Any], sig: inspect.Signature) -> dict[str, Any]:
    """The parameters' annotations with strings (``from __future__ import annotations``) evaluated.

    An annotation that does not resolve (a name imported only under TYPE_CHECKING) is left as the
    string; the checks then accept anything for it.
    """
    target: Any = inspect.unwrap(func)
    if inspect.isclass(target):
        target = target.__init__
    elif not inspect.isfunction(target) and not inspect.ismethod(target):
        target = type(target).__call__  # a callable object
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # whatever the project's annotations raise: resolve them one by one
        hints = {}
    namespace = getattr(inspect.unwrap(target), "__globals__", {})
    written = {name: param.annotation for name, param in sig.parameters.items()}
    written["return"] = sig.return_annotation
    return {
        name: _evaluate(hints.get(name, annotation), namespace)
        for name, annotation in written.items()
    }


def _evaluate(annotation: Any, namespace: dict[str, Any]) -> Any:
    """A string annotation evaluated in its module, as typing.get_type_hints would; else as is."""
    if isinstance(annotation, str):
        with contextlib.suppress(Exception):
            return eval(annotation, dict(namespace))
    return annotation


def hints_of(func: Callable[..., Any], sig: inspect.Signature) -> Hints:
    """The checkers of ``func``'s keyword parameters (``sig`` is its signature), worked out once
    per function."""
    try:
        found = _cache.get(func)
    except TypeError:  # an unhashable callable object: nothing to cache it by
        return _compile_hints(func, sig)
    if found is None:
        found = _cache[func] = _compile_hints(func, sig)
    return found


# Keyed by the function alone: hashing a Signature, parameter by parameter, costs more than the
# checks. Bounded as callables.signature's cache is.
_cache: dict[Callable[..., Any], Hints] = {}
CACHE_SIZE = 1024


def _compile_hints(func: Callable[..., Any], sig: inspect.Signature) -> Hints:
    if len(_cache) >= CACHE_SIZE:
        _cache.clear()
    annotations = resolved(func, sig)
    checks: dict[str, Checker] = {}
    params: dict[str, Param] = {}
    for name, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            continue
        annotation = annotations[name]
        compiled: tuple[Checker, Param] = (_anything, Param("json", text(annotation)))
        if not isinstance(annotation, str):
            with contextlib.suppress(Exception):  # an annotation no rule here understands
                compiled = _compile(annotation)
        params[name] = compiled[1]
        if compiled[0] is not _anything:
            checks[name] = compiled[0]
    defaults = {name: p.default for name, p in sig.parameters.items() if p.default is not p.empty}
    return Hints(checks, params, defaults, annotations)
