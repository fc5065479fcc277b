"""Reading JSON data files: JSON Lines (one object per line) and a single JSON array of objects. Each row
keeps the line an editor shows it on (for an array, the item's number), keys given twice become warnings,
and every syntax problem becomes a DataError on its line, since json's own messages name no line of ours."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from core.data_types import SURROGATE, DataError

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_JSON_HINT = "Each line must be one complete JSON object."


def _object_hook(duplicates: list[str]):
    """json's object_pairs_hook: notes keys given twice (JSON keeps the last silently) and refuses keys
    with lone surrogates (pandas cannot store them as column names)."""
    def hook(pairs):
        obj = dict(pairs)
        if len(obj) != len(pairs):
            duplicates.extend(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
        if not all(map(str.isascii, obj)):
            bad = next((k for k in obj if SURROGATE.search(k)), None)
            if bad is not None:
                raise DataError("a key holds a lone surrogate (half of a UTF-16 pair)", field=bad,
                                hint="Fix the \\uD800–\\uDFFF escape in the key.")
        return obj
    return hook


def _json_value(decoder: json.JSONDecoder, text: str, pos: int, path: Path, line: int, what: str = ""):
    """One JSON value from `text` at `pos`: (value, end). Every failure becomes a DataError on `line` (for an
    item of a JSON array, `what` names it and a syntax error is placed on its own line)."""
    try:
        return decoder.raw_decode(text, pos)
    except DataError as e:  # from the object hook
        raise DataError(f"{what}{e.message}", file=path, line=line, field=e.field, hint=e.hint) from None
    except json.JSONDecodeError as e:
        raise DataError(f"{what}invalid JSON ({e.msg} at column {e.colno})", file=path,
                        line=e.lineno if what else line, hint=_JSON_HINT) from e
    except RecursionError as e:
        raise DataError(f"{what}nested too deeply to read (over about 1,000 levels of [ ] or {{ }})", file=path,
                        line=line, hint="Each example should be one object of text fields.") from e
    except ValueError as e:  # an integer of more than 4300 digits, and the like
        raise DataError(f"{what}holds a value JSON cannot read: {str(e)[:160]}", file=path, line=line,
                        hint="Put long numbers in quotes as text, or remove them.") from e


def read_json(text: str, path: Path, warnings: list[DataError]) -> tuple[pd.DataFrame, list[int]]:
    """A JSON Lines file, or a file holding one JSON array of objects, as a DataFrame and the line of each
    row. Keys given twice are added to `warnings`; anything unreadable raises DataError."""
    if "\r" in text:  # an editor counts \r\n and a lone \r as one line break; in valid JSON \r is only whitespace
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    duplicates: list[str] = []
    decoder = json.JSONDecoder(object_pairs_hook=_object_hook(duplicates))
    rows, lines = [], []

    def keep(obj, number: int, line: int, what: str = "") -> None:
        if not isinstance(obj, dict) and what:
            raise DataError(f"item {number} of the JSON array is not an object (it is a {_json_type(obj)})",
                            file=path, line=line, hint="The array must hold one object per example.")
        if not isinstance(obj, dict):
            raise DataError(f"expected a JSON object, got {_json_type(obj)}", file=path, line=line,
                            hint="Each line must hold one object per example.")
        for key in dict.fromkeys(duplicates):
            warnings.append(DataError(f"{what}the key appears twice in one object; the last value was used",
                                      file=path, line=number, field=key, kind="key given twice",
                                      hint="Remove the extra key so the example says what you mean."))
        duplicates.clear()
        rows.append(obj)
        lines.append(number)

    if text.lstrip().startswith("["):  # a JSON array of objects; a row's `line` is its item number
        pos = _WHITESPACE.match(text, text.index("[") + 1).end()
        closed = text.startswith("]", pos)
        pos, line, counted = pos + closed, 1, 0
        while not closed:
            line, counted = line + text.count("\n", counted, pos), pos  # counted as it goes: one pass, not one per item
            what = f"item {len(rows) + 1} of the JSON array: "
            obj, pos = _json_value(decoder, text, pos, path, line, what)
            keep(obj, len(rows) + 1, line, what)
            pos = _WHITESPACE.match(text, pos).end()
            if text.startswith(",", pos):
                pos = _WHITESPACE.match(text, pos + 1).end()
            elif text.startswith("]", pos):
                pos, closed = pos + 1, True
            else:
                raise DataError(f"invalid JSON: expected `,` or `]` after item {len(rows)} of the array"
                                + (" (the file ends first)" if pos >= len(text) else ""), file=path,
                                line=text.count("\n", 0, pos) + 1, hint="The file must be one JSON array: [{…}, {…}].")
        rest = _WHITESPACE.match(text, pos).end()
        if rest < len(text):
            raise DataError("invalid JSON: text follows the end of the array", file=path,
                            line=text.count("\n", 0, rest) + 1, hint="The file must be one JSON array: [{…}, {…}].")
        if not rows:
            raise DataError("the file has no examples (an empty JSON array)", file=path,
                            hint="Add at least 10 examples.")
        return pd.DataFrame(rows, dtype=object), lines
    # JSON Lines, split on \n only: str.splitlines would also split inside strings at U+2028, U+0085, …
    for n, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        obj, end = _json_value(decoder, raw, _WHITESPACE.match(raw).end(), path, n)
        if raw[end:].strip():
            raise DataError(f"invalid JSON (extra data after the object at column {end + 1})", file=path, line=n,
                            hint=_JSON_HINT)
        keep(obj, n, n)
    if not rows:
        raise DataError("the file has no examples", file=path, hint="Add at least 10 examples.")
    return pd.DataFrame(rows, dtype=object), lines


def _json_type(value) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__)
