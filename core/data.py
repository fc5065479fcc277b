"""Load prompt → answer examples from JSONL, CSV or Parquet. Every error names the file, the line
(or row) and the field, and says what to do next, because an opaque dataset error is the most common
way a tuning run dies before it starts."""
from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

# Column pairs recognised without a mapping, in order of preference.
KNOWN_COLUMNS = [("input_text", "output_text"), ("prompt", "label"), ("prompt", "completion"),
                 ("input", "output"), ("text", "label")]
SUPPORTED_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")


class DataError(ValueError):
    """A dataset problem a person can fix: where it is, what is wrong, what to do."""

    def __init__(self, message: str, file: str | Path | None = None, line: int | None = None,
                 field: str | None = None, hint: str | None = None):
        self.message, self.file, self.line, self.field, self.hint = message, file, line, field, hint
        where = ", ".join(p for p in (
            f"{Path(file).name}" if file else "",
            f"line {line}" if line is not None else "",
            f"field `{field}`" if field else "") if p)
        text = f"{where}: {message}" if where else message
        super().__init__(f"{text} {hint}" if hint else text)


@dataclass
class Dataset:
    path: Path
    examples: list[dict]
    """Each example: {"input_text": str, "output_text": str, "line": int}."""
    input_column: str
    output_column: str

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def labels(self) -> list[str]:
        return sorted({e["output_text"] for e in self.examples})

    def label_counts(self) -> dict[str, int]:
        return dict(Counter(e["output_text"] for e in self.examples).most_common())


def read_table(path: str | Path) -> tuple[pd.DataFrame, list[int]]:
    """Read a file into a DataFrame and the source line number of each row (1-based)."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=path, hint="Check the path, or upload the file on the Datasets page.")
    if path.is_dir():
        raise DataError("is a folder, not a data file", file=path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataError(f"unsupported file type `{suffix or '(none)'}`", file=path,
                        hint=f"Use one of {', '.join(SUPPORTED_SUFFIXES)}.")
    if path.stat().st_size == 0:
        raise DataError("the file is empty", file=path, hint="Add at least 10 examples.")
    if suffix == ".parquet":
        try:
            df = pd.read_parquet(path)
        except Exception as e:  # pyarrow raises several types for corrupt files
            raise DataError(f"cannot read Parquet: {e}", file=path) from e
        return df, [i + 1 for i in range(len(df))]
    if suffix in (".csv", ".tsv"):
        try:
            df = pd.read_csv(path, sep=None, engine="python", encoding="utf-8-sig", dtype=str,
                             keep_default_na=False)
        except UnicodeDecodeError as e:
            raise DataError(f"not UTF-8 text (byte {e.start})", file=path,
                            hint="Save the file as UTF-8 and upload it again.") from e
        except (pd.errors.ParserError, csv.Error) as e:
            raise DataError(f"cannot parse CSV: {e}", file=path) from e
        except pd.errors.EmptyDataError as e:
            raise DataError("the file has no rows", file=path, hint="Add at least 10 examples.") from e
        return df, [i + 2 for i in range(len(df))]  # +1 for 1-based, +1 for the header line
    return _read_json_lines(path)


def _read_json_lines(path: Path) -> tuple[pd.DataFrame, list[int]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text (byte {e.start})", file=path,
                        hint="Save the file as UTF-8 and upload it again.") from e
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"invalid JSON: {e.msg}", file=path, line=e.lineno) from e
        if not all(isinstance(r, dict) for r in rows):
            raise DataError("the JSON array must hold objects, one per example", file=path)
        return pd.DataFrame(rows), list(range(1, len(rows) + 1))
    rows, lines = [], []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            raise DataError(f"invalid JSON ({e.msg} at column {e.colno})", file=path, line=n,
                            hint="Each line must be one complete JSON object.") from e
        if not isinstance(obj, dict):
            raise DataError(f"expected a JSON object, got {type(obj).__name__}", file=path, line=n)
        rows.append(obj)
        lines.append(n)
    if not rows:
        raise DataError("the file has no examples", file=path, hint="Add at least 10 examples.")
    return pd.DataFrame(rows), lines


def detect_columns(columns: list[str]) -> tuple[str, str] | None:
    for pair in KNOWN_COLUMNS:
        if pair[0] in columns and pair[1] in columns:
            return pair
    return None


def load_dataset(path: str | Path, input_column: str | None = None, output_column: str | None = None,
                 require_output: bool = True) -> Dataset:
    """Load and validate a prompt → answer file. Columns are auto-detected unless given."""
    path = Path(path)
    df, lines = read_table(path)
    columns = [str(c) for c in df.columns]
    if len(df) == 0:
        raise DataError("the file has a header but no rows", file=path, hint="Add at least 10 examples.")
    if input_column is None or (output_column is None and require_output):
        found = detect_columns(columns)
        if found is None:
            raise DataError(f"no prompt/answer columns found; the file has {', '.join(columns) or 'no columns'}",
                            file=path, hint="Name them input_text/output_text (or prompt/label), "
                                            "or map them with --input-column/--output-column.")
        input_column = input_column or found[0]
        output_column = output_column or found[1]
    for col in (input_column, output_column if require_output else None):
        if col is not None and col not in columns:
            raise DataError(f"column `{col}` is not in the file (it has {', '.join(columns)})", file=path, field=col)
    examples = []
    for i, line in enumerate(lines):
        row = df.iloc[i]
        inp = _cell_text(row[input_column], path, line, input_column)
        out = _cell_text(row[output_column], path, line, output_column) if require_output else ""
        examples.append({"input_text": inp, "output_text": out.strip(), "line": line})
    return Dataset(path=path, examples=examples, input_column=input_column, output_column=output_column or "")


def _cell_text(value, path: Path, line: int, field: str) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        raise DataError("is missing; every example needs one", file=path, line=line, field=field,
                        hint="Fill it in or remove the row.")
    if isinstance(value, (dict, list)):
        raise DataError(f"must be text, got {type(value).__name__}", file=path, line=line, field=field)
    text = str(value)
    if not text.strip():
        raise DataError("is empty; every example needs text here", file=path, line=line, field=field,
                        hint="Fill it in or remove the row.")
    return text
