"""Splits and the workspace's dataset catalog.

Splits follow the reference SQL workflow's `data_split_method`: AUTO_SPLIT (fewer than 500 rows: all
train; 500–50,000: 20% eval; more: 10,000 eval rows), RANDOM (a fraction, deterministic by a hash of
the row), CUSTOM (a boolean column, true = eval), SEQ (sorted by a column, the last fraction is eval)
and NO_SPLIT; a separate eval file replaces the split (recorded as EVAL_FILE). A registered dataset is
written as normalised train.jsonl / eval.jsonl under workspace/catalog/<name>/, with its metadata in
workspace/catalog/catalog.json. register_rows is the one writer; register_file and register_dataset
read a file and hand it the rows, so nothing ever goes through a temporary copy of the data."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from core import names
from core.data import FORMATS, MIN_EXAMPLES, DataError, Dataset, parse_dataset, read_table
from core.datacheck import apply_fixes
from core.runs import now_iso, read_json, write_json, write_jsonl

SPLITS = ("AUTO_SPLIT", "RANDOM", "CUSTOM", "SEQ", "NO_SPLIT")
EVAL_FILE = "EVAL_FILE"  # the split recorded when a separate eval set was given
COLUMN_SPLITS = ("CUSTOM", "SEQ")
TRUE = {"true", "1", "yes", "y", "t", "eval"}
# The keys every normalised example of a format carries (core.data's parsers write them).
ROW_KEYS = {"prompt_answer": ("input_text", "output_text"), "chat": ("messages",),
            "preference": ("prompt", "chosen", "rejected"), "unlabeled": ("input_text",)}


def _row_key(example: dict) -> str:
    return json.dumps({k: v for k, v in example.items() if k != "line"}, sort_keys=True, ensure_ascii=False)


def _in_eval(example: dict, fraction: float) -> bool:
    """Deterministic: the same row lands on the same side every time, whatever the file order."""
    h = int.from_bytes(hashlib.sha1(_row_key(example).encode()).digest()[:8], "big")
    return h / 2 ** 64 < fraction


def split_rows(rows: list[dict], method: str = "AUTO_SPLIT", eval_fraction: float = 0.2,
               values: dict | None = None, column: str | None = None) -> tuple[list[dict], list[dict]]:
    """(train, eval) rows. CUSTOM and SEQ need `values`: each row's `line` → its split column's value
    (`column` only names it in errors)."""
    method = method.upper()
    if method not in SPLITS:
        raise DataError(f"unknown split method `{method}`", hint=f"Use one of {', '.join(SPLITS)}.")
    if method == "NO_SPLIT":
        return list(rows), []
    if method == "AUTO_SPLIT":
        n = len(rows)
        if n < 500:
            return list(rows), []
        eval_fraction = 0.2 if n <= 50_000 else 10_000 / n
        method = "RANDOM"
    if method == "RANDOM":
        if not 0 < eval_fraction < 1:
            raise DataError(f"eval fraction must be between 0 and 1, got {eval_fraction}")
        return [e for e in rows if not _in_eval(e, eval_fraction)], [e for e in rows if _in_eval(e, eval_fraction)]
    if values is None:
        raise DataError(f"{method} needs a column", hint="Name it with --split-column.")
    missing = next((e for e in rows if e.get("line") not in values), None)
    if missing is not None:
        raise DataError("the row has no split value", line=missing.get("line"), field=column,
                        hint="Give every row's line a value of the split column.")
    if method == "CUSTOM":
        held = [str(values[e["line"]]).strip().lower() in TRUE for e in rows]
        return [e for e, h in zip(rows, held) if not h], [e for e, h in zip(rows, held) if h]
    try:  # SEQ
        ordered = sorted(rows, key=lambda e: values[e["line"]])
    except TypeError as e:
        raise DataError(f"mixes numbers and text, so the rows cannot be sorted ({e})", field=column,
                        hint="Sort by a column of one kind: dates, numbers or ids.") from e
    cut = round(len(ordered) * (1 - eval_fraction))
    return ordered[:cut], ordered[cut:]


def split_column_values(path: str | Path, column: str) -> dict:
    """Each row's source line → its value in `column`, read from the file as core.data reads it."""
    df, lines = read_table(path)
    if column not in df.columns:
        raise DataError(f"column `{column}` is not in the file", file=path, field=column,
                        hint=f"It has {', '.join(map(str, df.columns))}.")
    return dict(zip(lines, df[column].tolist()))


def _column_values(path: str | Path, split: str, column: str | None) -> dict | None:
    return split_column_values(path, column) if split.upper() in COLUMN_SPLITS and column else None


def split_examples(data: Dataset, method: str = "AUTO_SPLIT", eval_fraction: float = 0.2,
                   column: str | None = None) -> tuple[list[dict], list[dict]]:
    """split_rows on a dataset's examples; CUSTOM and SEQ read `column` from the dataset's file."""
    return split_rows(data.examples, method, eval_fraction, _column_values(data.path, method, column), column)


def catalog_path(workspace: str | Path) -> Path:
    return Path(workspace) / "catalog" / "catalog.json"


def list_datasets(workspace: str | Path) -> dict[str, dict]:
    return read_json(catalog_path(workspace), {}) or {}


def check_name(name: str) -> None:
    try:
        names.check_name(name, "dataset name")
    except names.InvalidName as e:
        raise DataError(str(e), hint="Choose another name for the dataset.") from None


def _check_rows(rows: list[dict], format: str, source) -> None:
    """Rows handed in directly must look like core.data's normalised examples of `format`."""
    if format not in FORMATS:
        raise DataError(f"unknown format `{format}`", hint=f"Use one of {', '.join(FORMATS)}.")
    for row in rows:
        missing = next((k for k in ROW_KEYS[format] if k not in row), None)
        if missing:
            raise DataError(f"is missing from a {format} row", file=source, line=row.get("line"), field=missing,
                            hint="Pass rows as core.data.parse_dataset returns them.")


def _write_jsonl(path: Path, examples: list[dict]) -> None:
    write_jsonl(path, ({k: v for k, v in e.items() if k != "line"} for e in examples))


def register_rows(workspace: str | Path, name: str, rows: list[dict], *, source: str | Path, format: str,
                  eval_rows: list[dict] | None = None, split: str = "AUTO_SPLIT", eval_fraction: float = 0.2,
                  split_values: dict | None = None, split_column: str | None = None,
                  eval_source: str | Path | None = None) -> dict:
    """Split and store normalised rows (core.data examples) under a name; the one writer of the catalog.
    `eval_rows` given: they are the eval set and `rows` all train (split recorded as EVAL_FILE); else
    `rows` are split by `split`, CUSTOM and SEQ by `split_values` (each row's line → the split column's
    value). Returns the catalog entry."""
    check_name(name)
    _check_rows(rows, format, source)
    if eval_rows is not None:
        _check_rows(eval_rows, format, eval_source or source)
        train, held, split = list(rows), list(eval_rows), EVAL_FILE
    else:
        train, held = split_rows(rows, split, eval_fraction, split_values, split_column)
        split = split.upper()
    if len(train) < MIN_EXAMPLES and format in ("prompt_answer", "chat"):
        raise DataError(f"the split leaves {len(train)} training examples; tuning needs at least {MIN_EXAMPLES}",
                        file=source, hint="Lower the eval fraction or add examples.")
    folder = Path(workspace) / "catalog" / name
    tmp = folder.with_name(f".{name}.tmp")  # written whole, then renamed: a reader never sees half a dataset
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _write_jsonl(tmp / "train.jsonl", train)
    if held:
        _write_jsonl(tmp / "eval.jsonl", held)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    entry = {"name": name, "source": str(Path(source).resolve()), "format": format, "split": split,
             "rows": len(train) + len(held), "train_rows": len(train), "eval_rows": len(held),
             "train_file": str(folder / "train.jsonl"), "eval_file": str(folder / "eval.jsonl") if held else None,
             "created": now_iso()}
    if split_column and split in COLUMN_SPLITS:
        entry["split_column"] = split_column
    if eval_source:
        entry["eval_source"] = str(Path(eval_source).resolve())
    catalog = list_datasets(workspace)
    catalog[name] = entry
    write_json(catalog_path(workspace), catalog)
    return entry


def register_file(workspace: str | Path, path: str | Path, name: str, *, format: str | None = None,
                  columns: tuple[str | None, str | None] = (None, None), split: str = "AUTO_SPLIT",
                  eval_fraction: float = 0.2, split_column: str | None = None, eval_path: str | Path | None = None,
                  fixes: list[str] | None = None) -> dict:
    """Read a file (format and columns detected unless given) and register its rows. A file with bad
    rows is refused unless `fixes` holds drop_invalid: bad rows are never dropped silently. `fixes`
    (core.datacheck.apply_fixes) make a fixed copy; the file itself is never changed. With `eval_path`,
    that file's valid rows, read the same way, are the eval set and `split` is not used."""
    check_name(name)
    data, problems = parse_dataset(path, *columns, format, require_output=False)
    if problems and "drop_invalid" not in (fixes or []):
        raise problems[0]
    rows = apply_fixes(data, fixes) if fixes else data.examples
    if eval_path:
        held, _ = parse_dataset(eval_path, *columns, data.format, require_output=False)
        return register_rows(workspace, name, rows, source=path, format=data.format, eval_rows=held.examples,
                             eval_source=eval_path)
    return register_rows(workspace, name, rows, source=path, format=data.format, split=split,
                         eval_fraction=eval_fraction, split_values=_column_values(path, split, split_column),
                         split_column=split_column)


def register_dataset(workspace: str | Path, source: str | Path, name: str, split: str = "AUTO_SPLIT",
                     eval_fraction: float = 0.2, split_column: str | None = None,
                     input_column: str | None = None, output_column: str | None = None,
                     examples: list[dict] | None = None, format: str | None = None) -> dict:
    """Validate, split and store a file under a name (`studio data add`). `examples` (e.g. the valid
    rows after safe fixes) replace the file's own rows, so a file with bad rows can be registered as a
    fixed copy. Returns the catalog entry."""
    if examples is None:
        return register_file(workspace, source, name, format=format, columns=(input_column, output_column),
                             split=split, eval_fraction=eval_fraction, split_column=split_column)
    check_name(name)
    data, _ = parse_dataset(source, input_column, output_column, format, require_output=False)
    return register_rows(workspace, name, examples, source=source, format=data.format, split=split,
                         eval_fraction=eval_fraction, split_values=_column_values(source, split, split_column),
                         split_column=split_column)


def delete_dataset(workspace: str | Path, name: str) -> None:
    catalog = list_datasets(workspace)
    if name not in catalog:
        raise DataError(f"no dataset named `{name}`")
    shutil.rmtree(Path(workspace) / "catalog" / name, ignore_errors=True)
    del catalog[name]
    write_json(catalog_path(workspace), catalog)
