"""Typed params: read one section of ``params.yaml`` into a dataclass, with errors that name the key.

Each stage reads only its own section (DVC's example-get-started convention), and that section is
what ``dvc.yaml`` lists under the stage's ``params``. Validation turns a value of the wrong type,
an unknown key, or a missing required key into a :class:`ConfigError` naming the dotted key, the
value, and what was expected.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from cmmerge.errors import ConfigError

T = TypeVar("T")
PARAMS_FILE = "params.yaml"


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (where plain YAML lets the last silently win,
    a second ``merges:`` or ``lambda:`` would override the first without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping (lines {seen[key]} and {line})",
                    key_node.start_mark,
                )  # fmt: skip
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


TRACE_ENV = "CMMERGE_TRACE_PARAMS"  # a folder: record which sections each stage script reads (tests)


class _ReadTracked(dict):
    """A params mapping that records each top-level section read, so a test can check that a stage reads only
    the params its ``params:`` in dvc.yaml lists (DVC reruns a stage only for changes of those)."""

    def __init__(self, data: dict, trace_dir: str) -> None:
        super().__init__(data)
        self._trace = Path(trace_dir) / f"{Path(sys.argv[0]).stem}.txt"

    def _record(self, key: Any) -> None:
        self._trace.parent.mkdir(parents=True, exist_ok=True)
        with self._trace.open("a", encoding="utf-8") as fh:
            fh.write(f"{key}\n")

    def __getitem__(self, key: Any) -> Any:
        self._record(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._record(key)
        return super().get(key, default)


def load_yaml(path: str | Path) -> dict:
    data = _load_yaml(path)
    trace = os.environ.get(TRACE_ENV)
    return _ReadTracked(data, trace) if trace and Path(path).name == PARAMS_FILE else data


def _load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def load_section(section: str, cls: type[T], path: str | Path = PARAMS_FILE) -> T:
    """Read ``section`` of the params file into the dataclass ``cls``."""
    data = load_yaml(path)
    if section not in data:
        raise ConfigError(f"{path}: section '{section}' is missing")
    return from_dict(cls, data[section], where=f"{path}: {section}")


def from_dict(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass ``cls`` from a mapping, checking every field's type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {_show(data)}")
    hints = typing.get_type_hints(cls)
    # a field may be read from another key (metadata {"key": ...}), e.g. ``lambda``, a Python keyword
    fields = {f.metadata.get("key", f.name): f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; expected some of {', '.join(fields)}")
    kwargs = {}
    for name, field in fields.items():
        key = f"{where}.{name}"
        if name in data:
            kwargs[field.name] = _coerce(hints[field.name], data[name], key)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key} is required ({_describe(hints[field.name])})")
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if callable(check):
        check(where)
    return obj


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # Optional[X]: X's own message says what is wrong
            return _coerce(options[0], value, key)
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except ConfigError as exc:
                errors.append(str(exc))
        hint = _float_hint(value) if float in options else ""
        raise ConfigError(f"{key} must be {_describe(tp)}, got {_show(value)}{hint}")
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{key} must be one of {', '.join(map(repr, get_args(tp)))}, got {_show(value)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key} must be a list, got {_show(value)}")
        (item_tp, *_) = get_args(tp) or (Any,)
        return [_coerce(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping, got {_show(value)}")
        _, val_tp = get_args(tp) or (Any, Any)
        return {str(k): _coerce(val_tp, v, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} must be a number, got {_show(value)}{_float_hint(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {_show(value)}")
        return value
    raise TypeError(f"unsupported params type {tp!r} for {key}")  # a bug in a dataclass, not user input


def _float_hint(value: Any) -> str:
    """YAML 1.1 (PyYAML) reads ``3e-4`` as text: a float needs a dot and a signed exponent, ``3.0e-4``."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return ""
        return f"; YAML reads {value} as text: write it as {number:.1e}".replace("e-0", "e-").replace("e+0", "e+")
    return ""


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp) if a is not type(None))
    if origin is Literal:
        return "one of " + ", ".join(map(repr, get_args(tp)))
    if origin in (list, tuple):
        return "a list"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def require(cond: bool, message: str) -> None:
    """Raise a :class:`ConfigError` with ``message`` unless ``cond`` holds (for ``validate`` hooks)."""
    if not cond:
        raise ConfigError(message)
