"""Typed params: read one section of ``params.yaml`` into a dataclass, with errors that name the key.

Each stage reads only its own section (DVC's example-get-started convention), and that section is
what ``dvc.yaml`` lists under the stage's ``params``. The schema is pydantic's: each params dataclass has a
strict pydantic model generated from its annotations (:func:`schema_model`; ``cmmerge config schema`` prints
them as JSON Schema), and pydantic's first error becomes a :class:`ConfigError` naming the dotted key, the
value, and what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import pydantic
import yaml

from cmmerge import yaml12
from cmmerge.errors import ConfigError

T = TypeVar("T")
PARAMS_FILE = "params.yaml"


class _UniqueKeyLoader(yaml12.Loader):
    """The YAML 1.2 loader whose values match DVC's (:mod:`cmmerge.yaml12`), refusing a key given twice in one
    mapping (where plain YAML lets the last silently win, a second ``merges:`` or ``lambda:`` would override the
    first without a word)."""

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
    """Build dataclass ``cls`` from a mapping: pydantic validates it against :func:`schema_model` ``(cls)``, then
    the dataclasses are built bottom-up and each one's ``validate(where)`` hook checks what types cannot say
    (ranges, links between fields)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {_show(data)}")
    try:
        checked = schema_model(cls).model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(_one_line(cls, data, exc, where)) from None
    return _build(cls, checked.model_dump(exclude_unset=True), where)


# --- the schema: pydantic models derived from the params dataclasses ---------------------------------------------
# The dataclasses stay the objects the code passes around (``dataclasses.replace``, ``asdict`` for fingerprints);
# their pydantic twins are generated from the same annotations, so a field is declared once. Strict: YAML's
# "3" is not a number and 1 is not true; a field may be read from another key (``metadata={"key": "lambda"}``).
_SCHEMA_CONFIG = pydantic.ConfigDict(extra="forbid", strict=True)


@functools.cache
def schema_model(cls: type) -> type[pydantic.BaseModel]:
    """The pydantic model of params dataclass ``cls`` (nested dataclasses become nested models)."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = f.metadata.get("key", f.name)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        # an absent key keeps the dataclass's own default (model_dump(exclude_unset=True) leaves it out)
        fields[f.name] = (_schema_type(hints[f.name]), pydantic.Field(... if required else None, alias=key))
    return pydantic.create_model(cls.__name__, __config__=_SCHEMA_CONFIG, __doc__=cls.__doc__, **fields)


def _schema_type(tp: Any) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return schema_model(tp)
    if origin in (Union, types.UnionType):
        return Union[tuple(_schema_type(a) for a in get_args(tp))]  # noqa: UP007 - built from a tuple
    if origin in (list, tuple):
        (item,) = get_args(tp)[:1] or (Any,)
        return list[_schema_type(item)]
    if origin is dict:
        _, value = get_args(tp) or (Any, Any)
        return dict[Any, _schema_type(value)]  # keys are made strings below (YAML reads `1:` as an integer)
    return tp


def _build(cls: type[T], data: dict, where: str) -> T:
    hints = typing.get_type_hints(cls)
    kwargs = {name: _value(hints[name], value, f"{where}.{_key_of(cls, name)}") for name, value in data.items()}
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if callable(check):
        check(where)
    return obj


def _value(tp: Any, value: Any, key: str) -> Any:
    """A validated value in the shape the dataclass declares (nested dataclasses built, mapping keys strings)."""
    origin = get_origin(tp)
    if value is None:
        return None
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        classes = [a for a in members if dataclasses.is_dataclass(a)]
        if isinstance(value, dict) and len(classes) == 1:
            return _build(classes[0], value, key)
        return float(value) if float in members and type(value) is int else value
    if origin in (list, tuple):
        (item,) = get_args(tp)[:1] or (Any,)
        return [_value(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, val = get_args(tp) or (Any, Any)
        return {str(k): _value(val, v, f"{key}.{k}") for k, v in value.items()}
    return value


def _key_of(cls: type, name: str) -> str:
    return next(f.metadata.get("key", f.name) for f in dataclasses.fields(cls) if f.name == name)


def _field_by_key(cls: type, key: Any) -> tuple[str, Any] | None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("key", f.name) == key:
            return f.name, hints[f.name]
    return None


def _one_line(cls: type, data: dict, exc: pydantic.ValidationError, where: str) -> str:
    """pydantic's first error as this project's one line: the dotted key, the value and what was expected."""
    errors = exc.errors()
    first = errors[0]
    key, tp, value, owner = _locate(cls, data, first["loc"], where)
    if first["type"] == "extra_forbidden":
        parent = first["loc"][:-1]
        names = [str(e["loc"][-1]) for e in errors if e["type"] == "extra_forbidden" and e["loc"][:-1] == parent]
        valid = [f.metadata.get("key", f.name) for f in dataclasses.fields(owner)]
        close = difflib.get_close_matches(names[0], valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{key.rsplit('.', 1)[0]}: unknown key(s) {', '.join(names)}{hint}; expected some of {', '.join(valid)}"
    if first["type"] == "missing":
        return f"{key} is required ({_describe(tp)})"
    hint = _float_hint(value) if float in (get_args(tp) or (tp,)) else ""
    return f"{key} must be {_describe(tp)}, got {_show(value)}{hint}"


def _locate(cls: type, data: Any, loc: tuple, where: str) -> tuple[str, Any, Any, type]:
    """Follow an error location through the declared types: the dotted key, its declared type, the value given
    and the dataclass that holds it. A union stops the walk (pydantic's further steps name union members)."""
    key, tp, value, owner = where, cls, data, cls
    for step in loc:
        while get_origin(tp) in (Union, types.UnionType) and len([a for a in get_args(tp) if a is not type(None)]) == 1:
            tp = next(a for a in get_args(tp) if a is not type(None))  # Optional[X] is X to pydantic's locations
        if dataclasses.is_dataclass(tp):
            found = _field_by_key(tp, step)
            owner = tp
            key = f"{key}.{step}"
            if found is None:  # an unknown key
                return key, Any, value.get(step) if isinstance(value, dict) else None, owner
            tp = found[1]
            value = value.get(step) if isinstance(value, dict) else None
        elif get_origin(tp) in (list, tuple) and isinstance(step, int):
            key, tp = f"{key}[{step}]", (get_args(tp)[:1] or (Any,))[0]
            value = value[step] if isinstance(value, list) and step < len(value) else None
        elif get_origin(tp) is dict:
            key, tp = f"{key}.{step}", (get_args(tp) or (Any, Any))[1]
            value = value.get(step) if isinstance(value, dict) else None
        else:
            break
    return key, tp, value, owner


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
