"""Typed, validated configuration built from params.yaml.

Each stage declares its section as a dataclass (the dataclass *is* the schema: field names,
types and defaults). ``load_section`` reads params.yaml once, checks the section against the
dataclass and returns an instance. An unknown or mistyped key, a missing required key or a value
of the wrong type stops the stage with one message that names the key and what was expected.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from lib.core.errors import UserError

PARAMS_FILE = "params.yaml"
# The top-level sections of params.yaml: one per stage that has params, `attention` (read by pretrain,
# sft and eval), `engine` (where the data stages run; it changes no output, so no stage declares it)
# and the global seed; exactly those dvc.yaml's stages declare; each but seed has its schema in
# lib/cli/check.py's SCHEMAS (tests/test_params_check.py checks the three agree).
SECTIONS = ("seed", "engine", "scrape", "clean", "corpus", "tokenizer", "pack", "pretrain", "sft", "eval", "attention")
OPTIONAL_SECTIONS = ("attention", "engine")  # absent: their defaults (learned attention, local)
ENGINES = ("local", "ray")  # where the data stages run their per-document work (lib/engine)

T = TypeVar("T")


class ParamsError(UserError):
    pass


def read_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: file not found; run from the repository root or pass the params file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path}:{where} is not valid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    for key in data:
        if key not in SECTIONS:
            raise ParamsError(_unknown_key(str(path), str(key), SECTIONS))
    return data


def check_file(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """The whole-file check of params.yaml's top level: no unknown section (with a did-you-mean),
    no missing one, an integer seed. Each section's keys are checked by the stage that reads it
    (and all at once by ``hpc-lm check``). Returns the parsed file."""
    data = read_params(path)
    missing = [s for s in SECTIONS if s not in data and s not in OPTIONAL_SECTIONS]
    if missing:
        raise ParamsError(f"{path}: missing section{'s' * (len(missing) > 1)} {', '.join(missing)}; "
                          f"add {'them' if len(missing) > 1 else 'it'} (see README 'Parameters')")
    load_seed(path)
    load_engine(path)
    return data


def load_seed(path: str | Path = PARAMS_FILE) -> int:
    data = read_params(path)
    if "seed" not in data:
        raise ParamsError(f"{path}: missing key 'seed' (an integer used for all randomness)")
    return _convert(int, data["seed"], f"{path}: seed")


def load_engine(path: str | Path = PARAMS_FILE) -> str:
    """The data engine: ``local`` (processes on this machine, the default) or ``ray``. No stage
    declares it in dvc.yaml: both engines give the same bytes, so switching reruns nothing."""
    value = read_params(path).get("engine", "local")
    return _convert(Literal[ENGINES], value, f"{path}: engine")


def load_section(name: str, cls: type[T], path: str | Path = PARAMS_FILE) -> T:
    """Build and validate the dataclass ``cls`` from section ``name`` of params.yaml."""
    data = read_params(path)
    if name not in data:
        raise ParamsError(f"{path}: missing section '{name}'; add it (see README 'Parameters')")
    return from_mapping(cls, data[name], f"{path}: {name}")


def from_mapping(cls: type[T], data: Any, where: str) -> T:
    """Convert a plain mapping into dataclass ``cls``, validating every key and type."""
    if not isinstance(data, dict):
        raise ParamsError(f"{where}: expected a mapping, got {_describe(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            raise ParamsError(_unknown_key(where, str(key), tuple(fields)))
    values = {}
    for name, field in fields.items():
        if name in data:
            values[name] = _convert(hints[name], data[name], f"{where}.{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ParamsError(f"{where}.{name}: missing required key ({_type_name(hints[name])})")
    try:
        return cls(**values)
    except ValueError as err:  # __post_init__ range checks raise ValueError with the key named
        raise ParamsError(f"{where}.{err}") from None


def check(condition: bool, key: str, message: str) -> None:
    """For ``__post_init__`` range checks: raises ValueError('key: message') caught above."""
    if not condition:
        raise ValueError(f"{key}: {message}")


def check_choice(value: str, choices, key: str, kind: str) -> None:
    """For ``__post_init__``: ``value`` must name one of ``choices`` (a registry's keys, read at
    the time of the check, so an entry added to the registry is accepted at once)."""
    names = tuple(choices)
    if value not in names:
        guess = difflib.get_close_matches(str(value), names, n=1)
        hint = f"; did you mean '{guess[0]}'?" if guess else ""
        raise ValueError(f"{key}: unknown {kind} '{value}'{hint} (one of: {', '.join(names)})")


def _unknown_key(where: str, key: str, allowed: tuple[str, ...]) -> str:
    guess = difflib.get_close_matches(key, allowed, n=1)
    hint = f"; did you mean '{guess[0]}'?" if guess else ""
    prefix = f"{where}.{key}" if ": " in where else f"{where}: {key}"
    return f"{prefix}: unknown key{hint} (allowed: {', '.join(allowed)})"


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        return f"a list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping of {_type_name(get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return f"a mapping with keys {', '.join(f.name for f in dataclasses.fields(tp))}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null", Any: "any value"}.get(tp, str(tp))


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        for option in get_args(tp):
            try:
                return _convert(option, value, where)
            except ParamsError:
                continue
        raise ParamsError(f"{where}: expected {_type_name(tp)}, got {_describe(value)}")
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ParamsError(f"{where}: expected {_type_name(tp)}, got {_describe(value)}")
    if origin is list:
        if not isinstance(value, list):
            raise ParamsError(f"{where}: expected {_type_name(tp)}, got {_describe(value)}")
        (item,) = get_args(tp)
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{where}: expected {_type_name(tp)}, got {_describe(value)}")
        _, item = get_args(tp)
        return {str(k): _convert(item, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, where)
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 3e-4 as a string; accept real numbers only
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"unsupported params type {tp!r} at {where}")
    raise ParamsError(f"{where}: expected {_type_name(tp)}, got {_describe(value)}")
