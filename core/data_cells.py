"""Checking table cells before they become example text. A file's cells keep their own types (text,
numbers, lists, nulls, NaN from pandas or numpy), so every value is checked here, and anything that is
not usable text becomes a DataError that says, in words, what the value is (describe_value)."""
from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from core.data_types import SURROGATE, DataError, printable

# What a numeric cell can be: Python's numbers, Decimal (Parquet decimals) and numpy's (pandas columns).
NUMBER_TYPES = (int, float, Decimal, np.integer, np.floating)


def is_missing(value) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, (float, np.floating)) and math.isnan(value))


def short_repr(value, limit: int = 60) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def describe_value(value) -> str:
    """What a value is, in words, for messages: "null", "a number (7)", "a list", …"""
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return f"a boolean ({str(bool(value)).lower()})"
    if isinstance(value, NUMBER_TYPES):
        return f"a number ({short_repr(value)})"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (bytes, bytearray)):
        return "binary data"
    return f"a {type(value).__name__} ({short_repr(value)})"


def refuse_surrogate(text: str, path: Path, line: int, field: str) -> str:
    if text.isascii() or not SURROGATE.search(text):
        return text
    raise DataError(f"holds a lone surrogate ({printable(SURROGATE.search(text).group())}), half of a "
                    "UTF-16 pair, which is not text", file=path, line=line, field=field,
                    kind="lone surrogate in the text", hint="Fix the \\uD800–\\uDFFF escape in the file.")


class Cells:
    """Turns table cells into text for one file: text as it is; numbers and booleans as their text with one
    warning per field (so a label column of integers works, and says so); everything else is a DataError
    for that row and field."""

    def __init__(self, path: Path):
        self.path = path
        self.coerced: dict[tuple[str, str], list] = {}  # (field, kind) → [first line, count, example value]

    def text(self, value, line: int, field: str) -> str:
        path = self.path
        if isinstance(value, str):
            text = value
        elif is_missing(value):
            raise DataError("is missing; every example needs one", file=path, line=line, field=field,
                            hint="Fill it in or remove the row.")
        elif isinstance(value, (dict, list, tuple, np.ndarray)):
            got = "dict" if isinstance(value, dict) else "list"
            raise DataError(f"must be text, got {got}", file=path, line=line, field=field)
        elif isinstance(value, (bool, np.bool_, *NUMBER_TYPES)):
            if isinstance(value, (float, Decimal, np.floating)) and not math.isfinite(value):
                raise DataError(f"is {describe_value(value)}, expected text", file=path, line=line, field=field,
                                kind=f"`{field}` is a number that is not finite", hint="Replace it with text.")
            text = str(value)
            kind = "boolean" if isinstance(value, (bool, np.bool_)) else "number"
            seen = self.coerced.setdefault((field, kind), [line, 0, value])
            seen[1] += 1
        else:
            raise DataError(f"is {describe_value(value)}, expected text", file=path, line=line, field=field,
                            kind=f"`{field}` is not text", hint="Store the column as text.")
        text = refuse_surrogate(text, path, line, field)
        if not text.strip():
            raise DataError("is empty; every example needs text here", file=path, line=line, field=field,
                            hint="Fill it in or remove the row.")
        return text

    def warnings(self) -> list[DataError]:
        out = []
        for (name, kind), (line, count, value) in self.coerced.items():
            more = f"; so were {count - 1} more rows" if count > 1 else ""
            out.append(DataError(f"is a {kind} ({short_repr(value)}), read as the text {short_repr(str(value))}{more}",
                                 file=self.path, line=line, field=name, kind=f"`{name}` holds {kind}s, read as text",
                                 hint="Put the value in quotes if it is text; check the column if it is not."))
        return out
