"""One JSON convention for the CLI's --json and the REST gateway: protobuf's JSON mapping.

lowerCamelCase field names, enums by name, Timestamps as ISO-8601 (RFC 3339) strings, 64-bit
integers as strings (the mapping's rule), and every field printed, defaults included. One
refinement: numbers that are whole print as integers. `google.protobuf.Struct` (manifests,
hyper-parameters) stores every number as a double, so `"count": 1.0` would otherwise stand next
to `"epochs": 16`; a JSON number is a number either way, and 1e15-sized values stay exact.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

MAX_EXACT_INTEGER = 2**53  # beyond this a double no longer holds every integer


def whole_numbers_as_ints(value: Any) -> Any:
    """Floats with an integral value (1.0) become ints (1), recursively; NaN/inf and fractions stay."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) <= MAX_EXACT_INTEGER else value
    if isinstance(value, dict):
        return {k: whole_numbers_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers_as_ints(v) for v in value]
    return value


def message_json(message: Message) -> dict[str, Any]:
    """A message as the JSON document both the CLI and REST print."""
    return whole_numbers_as_ints(json_format.MessageToDict(message, always_print_fields_with_no_presence=True))


def enum_value_text(enum_type: Any, number: int, what: str) -> str:
    """`catalog format 0 (CATALOG_FORMAT_UNSPECIFIED) is not valid; valid: CATALOG_FORMAT_QUAKEML, ...`."""
    values = enum_type.DESCRIPTOR.values if hasattr(enum_type, "DESCRIPTOR") else enum_type.values
    by_number = {v.number: v.name for v in values}
    valid = ", ".join(v.name for v in values if v.number != 0)
    shown = f"{number} ({by_number[number]})" if number in by_number else str(number)
    return f"{what} {shown} is not valid; valid: {valid}"
