"""Field readers of kf items (JSON decoded to mappings): typed reads that name the bad field.

A reader takes ``(mapping, key, where)``, ``where`` being the dotted path of the mapping in the
item (``msgmenu.list[2]``), so a :class:`~wecom_sdk.errors.KfItemError` names the field, never
its value. JSON null counts as absent: it carries no data, and refusing it would drop a whole item
over a field we would default anyway.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..errors import KfItemError
from .base import model_field

__all__ = [
    "canonical_json",
    "entries",
    "json_field",
    "path",
    "read_array",
    "read_float",
    "read_int",
    "read_object",
    "read_str",
]

# Integers must fit the archive's BIGINT columns; Python would accept any size.
_INT64 = 2**63

_Reader = Callable[[Mapping[str, Any], str, str], Any]


def canonical_json(value: object, *, strict: bool = False) -> str:
    """Canonical JSON: sorted keys, compact, UTF-8 kept; ``strict`` refuses NaN/Infinity."""
    return json.dumps(
        value,
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=not strict,
        default=_mapping_as_dict,
    )


def _mapping_as_dict(value: object) -> dict[str, Any]:
    # json only encodes dicts; a read-only Mapping (MappingProxyType, ...) is still a JSON object.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def path(where: str, key: str) -> str:
    """The dotted path of ``key`` in the mapping at ``where``."""
    return f"{where}.{key}" if where else key


def read_str(d: Mapping[str, Any], key: str, where: str = "") -> str:
    """A string, "" when absent."""
    value = d.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise KfItemError(f"{path(where, key)} should be a string", field=path(where, key))
    return value


def read_int(d: Mapping[str, Any], key: str, where: str = "") -> int:
    """A 64-bit integer (not a boolean), 0 when absent."""
    value = d.get(key)
    if value is None:
        return 0
    # bool is an int subclass, but JSON true/false is not a number.
    if isinstance(value, bool) or not isinstance(value, int):
        raise KfItemError(f"{path(where, key)} should be an integer", field=path(where, key))
    if not -_INT64 <= value < _INT64:
        raise KfItemError(f"{path(where, key)} is out of range", field=path(where, key))
    return value


def read_float(d: Mapping[str, Any], key: str, where: str = "") -> float:
    """A finite number (an integer is taken as a float), 0.0 when absent."""
    value = d.get(key)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KfItemError(f"{path(where, key)} should be a number", field=path(where, key))
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        number = math.inf
    if not math.isfinite(number):
        raise KfItemError(f"{path(where, key)} should be finite", field=path(where, key))
    return number


def read_object(d: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
    """A JSON object, {} when absent."""
    value = d.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise KfItemError(f"{path(where, key)} should be an object", field=path(where, key))
    return value


def read_array(d: Mapping[str, Any], key: str, where: str = "") -> Sequence[Any]:
    """A JSON array, () when absent."""
    value = d.get(key)
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise KfItemError(f"{path(where, key)} should be an array", field=path(where, key))
    return value


def entries(d: Mapping[str, Any], key: str, where: str) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """The objects of array ``key``, each with its path (``msgmenu.list[2]``)."""
    for index, entry in enumerate(read_array(d, key, where)):
        at = f"{path(where, key)}[{index}]"
        if not isinstance(entry, Mapping):
            raise KfItemError(f"{at} should be an object", field=at)
        yield at, entry


def json_field(
    key: str, read: _Reader = read_str, default: Any = "", *, secret: bool = False
) -> Any:
    """A model field read from JSON ``key`` by ``read(mapping, key, where)``."""
    return model_field(key, read, default, secret=secret)
