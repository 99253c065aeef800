"""Turning a dotted path and a JSON text into a callable and its keyword arguments.

One place for the checks that ``create_task``, the admin form, the CSV import and the worker share.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from django_simple_queue import conf, hints
from django_simple_queue.exceptions import (
    InvalidTaskArguments,
    InvalidTaskPath,
    TaskNotAllowedError,
)


def import_callable(path: str) -> Callable[..., Any]:
    """Import ``"package.module.function"`` and return the callable, or raise InvalidTaskPath."""
    if not isinstance(path, str) or "." not in path:
        raise InvalidTaskPath(f"'{path}' is not a dotted path such as 'myapp.tasks.send_email'.")
    module_path, _, name = path.rpartition(".")
    try:
        module = importlib.import_module(module_path)
    except ImportError as exc:
        raise InvalidTaskPath(f"'{path}' cannot be imported: {exc}") from exc
    try:
        func = getattr(module, name)
    except AttributeError as exc:
        raise InvalidTaskPath(
            f"'{path}' cannot be imported: module '{module_path}' has no attribute '{name}'."
        ) from exc
    if not callable(func):
        raise InvalidTaskPath(f"'{path}' is not callable.")
    return func


def check_allowed(path: str) -> None:
    if not conf.is_task_allowed(path):
        raise TaskNotAllowedError(
            f"Task '{path}' is not in the allowed list. "
            "Add it to DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS in settings.py."
        )


def resolve(path: str) -> Callable[..., Any]:
    """The callable behind an allowed, importable path."""
    check_allowed(path)
    return import_callable(path)


def dump_args(args: Any) -> str:
    """Serialise keyword arguments to the JSON text stored in ``Task.args``."""
    if not isinstance(args, dict):
        raise TypeError("args should be of type dict.")
    try:
        # NaN and infinities would be stored as JSON no other reader accepts.
        text = json.dumps(args, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidTaskArguments(f"args must be JSON-serialisable: {exc}") from exc
    check_size(text)
    return text


def check_size(text: str) -> None:
    limit = conf.get_max_args_size()
    size = len(text.encode())
    if size > limit:
        raise InvalidTaskArguments(
            f"args are {size} bytes of JSON, more than DJANGO_SIMPLE_QUEUE_MAX_ARGS_SIZE ({limit})."
        )


def load_args(text: str | None) -> dict[str, Any]:
    """Parse stored ``Task.args``; empty means no arguments. Raise InvalidTaskArguments."""
    if text is None or text == "":
        return {}
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise InvalidTaskArguments(f"args are not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidTaskArguments(
            f"args must be a JSON object of keyword arguments, not {type(value).__name__}."
        )
    return value


def signature(func: Callable[..., Any]) -> inspect.Signature | None:
    """``inspect.signature(func)``, worked out once per function; None if it has none."""
    try:
        return _signature(func)
    except TypeError:  # an unhashable callable object: nothing to cache it by
        return _signature.__wrapped__(func)


@functools.lru_cache(maxsize=1024)
def _signature(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return None


def bind(func: Callable[..., Any], kwargs: Mapping[str, Any], *, types: bool = True) -> None:
    """Check that ``func(**kwargs)`` matches the signature (and, with ``types``, the type hints);
    name the first wrong key."""
    sig = signature(func)
    if sig is None:
        return
    params = sig.parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for key in kwargs:
        param = params.get(key)
        if param is None and not takes_any:
            raise InvalidTaskArguments(f"unexpected argument '{key}'.")
        if param is not None and param.kind is param.POSITIONAL_ONLY:
            raise InvalidTaskArguments(f"argument '{key}' is positional-only.")
    for name, param in params.items():
        required = param.default is param.empty and param.kind in (
            param.POSITIONAL_OR_KEYWORD,
            param.KEYWORD_ONLY,
        )
        if required and name not in kwargs:
            raise InvalidTaskArguments(f"missing required argument '{name}'.")
    if types:
        check_types(func, kwargs)


def check_types(func: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    """Check each value against its parameter's type hint (``hints``); names are ``bind``'s."""
    sig = signature(func)
    if sig is None or not kwargs:
        return
    problem = hints.hints_of(func, sig).check(kwargs)
    if problem is not None:
        raise InvalidTaskArguments(problem)


class _Shown(str):
    """An annotation's text that ``inspect.Signature`` prints as it is, without quotes."""

    def __repr__(self) -> str:
        return str(self)


def describe(path: str) -> dict[str, Any]:
    """Signature, first docstring line and parameters of an allowed task, for forms.

    ``defaults`` holds the JSON defaults only: a required parameter has no value to pre-fill, so
    that the form says it is missing until someone types one. ``params`` describes each keyword
    parameter for a field: name, kind (int, float, bool, str, date, datetime, choice or json),
    annotation, required, nullable, choices and default. The default of a REDACT_KEYS parameter
    is neither shown nor pre-filled: the function's own default applies when it is left out.
    """
    func = import_callable(path)
    sig = signature(func)
    if sig is None:
        return {"path": path, "signature": "(…)", "doc": "", "defaults": {}, "params": []}
    found = hints.hints_of(func, sig)
    keys = conf.get_redact_keys()
    defaults: dict[str, Any] = {}
    params: list[dict[str, Any]] = []
    shown: list[inspect.Parameter] = []
    for name, param in sig.parameters.items():
        hidden = name.lower() in keys and param.default is not param.empty
        info = found.params.get(name)
        annotation = param.annotation
        if param.annotation is not param.empty:
            annotation = _Shown(info.text if info else hints.text(found.annotations[name]))
        shown.append(
            param.replace(annotation=annotation, default=conf.REDACTED if hidden else param.default)
        )
        if info is None:  # *args, **kwargs and positional-only parameters get no field
            continue
        entry: dict[str, Any] = {
            "name": name,
            "kind": info.kind,
            "annotation": info.text,
            "required": param.default is param.empty,
            "nullable": info.nullable,
            "choices": list(info.choices),
        }
        if hidden:
            entry["default_text"] = conf.REDACTED
        elif param.default is not param.empty:
            try:
                entry["default_text"] = json.dumps(param.default, allow_nan=False)
                # A default JSON cannot hold is left out: the function's own applies.
                defaults[name] = entry["default"] = param.default
            except (TypeError, ValueError):
                default = param.default
                entry["default_text"] = str(default) if isinstance(default, Enum) else repr(default)
        params.append(entry)
    returns = sig.return_annotation
    if returns is not sig.empty:
        returns = _Shown(hints.text(found.annotations.get("return", returns)))
    sig = sig.replace(parameters=shown, return_annotation=returns)
    doc = (inspect.getdoc(func) or "").strip()
    return {
        "path": path,
        "signature": f"{path.rpartition('.')[2]}{sig}",
        "doc": doc,
        "defaults": defaults,
        "params": params,
    }


def redact(args: Any) -> Any:
    """A copy of ``args`` with the values of REDACT_KEYS replaced, at any depth."""
    keys = conf.get_redact_keys()
    if isinstance(args, dict):
        return {
            key: conf.REDACTED if str(key).lower() in keys else redact(value)
            for key, value in args.items()
        }
    if isinstance(args, list):
        return [redact(value) for value in args]
    return args


def redacted_text(text: str | None) -> str | None:
    """``Task.args`` as JSON text with sensitive values hidden; unparsable text is hidden whole."""
    if text is None or text == "":
        return text
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return text if not conf.get_redact_keys() else "(unparsable arguments hidden)"
    return json.dumps(redact(value), ensure_ascii=False)
