"""A small JSON-Schema checker for the subset our file schemas use, with no dependency.

Supports type, enum, const, required, properties, additionalProperties (schema), items,
minItems, maxItems, minLength, minimum and oneOf. Returns the first problem as
(JSON pointer, expectation), walking the document in order so messages are stable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


def _is(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("number", "integer"):
        return False
    if name in ("number", "integer") and isinstance(value, float) and not math.isfinite(value):
        return False  # one number policy: finite floats only
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES[name])


def _pointer(path: tuple[Any, ...]) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)


def first_error(
    doc: Any, schema: Mapping[str, Any], path: tuple[Any, ...] = ()
) -> tuple[str, str] | None:
    """The first place where `doc` breaks `schema`, or None when it conforms."""
    if "oneOf" in schema:
        errors = [first_error(doc, s, path) for s in schema["oneOf"]]
        if sum(e is None for e in errors) == 1:
            return None
        deepest = max((e for e in errors if e is not None), key=lambda e: len(e[0]))
        return deepest
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is(doc, t) for t in names):
            return _pointer(path), f"expected {' or '.join(names)}, got {_describe(doc)}"
    problem = _value_error(doc, schema)
    if problem:
        return _pointer(path), problem
    if isinstance(doc, dict):
        return _object_error(doc, schema, path)
    if isinstance(doc, list):
        if len(doc) < schema.get("minItems", 0) or len(doc) > schema.get("maxItems", len(doc)):
            return (
                _pointer(path),
                f"expected {schema.get('minItems', 0)}–"
                f"{schema.get('maxItems', '∞')} items, got {len(doc)}",
            )
        if "items" in schema:
            return _items_error(doc, schema["items"], path)
    return None


def _items_error(
    doc: list[Any], items: Mapping[str, Any], path: tuple[Any, ...]
) -> tuple[str, str] | None:
    plain = _plain_number(items)
    for i, item in enumerate(doc):
        if plain is not None and type(item) in (float, int) and item >= plain:
            continue  # the common case (samples), without a call per item
        err = first_error(item, items, (*path, i))
        if err:
            return err
    return None


def _plain_number(schema: Mapping[str, Any]) -> float | None:
    """The minimum of a schema that is only `{"type": "number"[, "minimum": m]}`, else None."""
    if schema.get("type") != "number" or not set(schema) <= {"type", "minimum"}:
        return None
    return float(schema.get("minimum", -math.inf))


def _value_error(doc: Any, schema: Mapping[str, Any]) -> str | None:
    if "const" in schema and doc != schema["const"]:
        return f"expected {schema['const']!r}, got {_describe(doc)}"
    if "enum" in schema and doc not in schema["enum"]:
        return f"expected one of {schema['enum']}, got {_describe(doc)}"
    if isinstance(doc, str) and len(doc) < schema.get("minLength", 0):
        return f"expected at least {schema['minLength']} characters"
    if _is(doc, "number") and "minimum" in schema and doc < schema["minimum"]:
        return f"expected a number ≥ {schema['minimum']}, got {doc!r}"
    return None


def _object_error(
    doc: dict[str, Any], schema: Mapping[str, Any], path: tuple[Any, ...]
) -> tuple[str, str] | None:
    for key in schema.get("required", ()):
        if key not in doc:
            return _pointer(path), f"missing required field {key!r}"
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for key, value in doc.items():
        sub = props.get(key, extra if isinstance(extra, Mapping) else None)
        if sub is not None:
            err = first_error(value, sub, (*path, key))
            if err:
                return err
    return None


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"
