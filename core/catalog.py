"""Splits and the workspace's dataset catalog.

Splits follow the reference SQL workflow's `data_split_method`: AUTO_SPLIT (fewer than 500 rows: all
train; 500–50,000: 20% eval; more: 10,000 eval rows), RANDOM (a fraction, deterministic by a hash of
the row), CUSTOM (a boolean column, true = eval), SEQ (sorted by a column, the last fraction is eval)
and NO_SPLIT. A registered dataset is written as normalised train.jsonl / eval.jsonl under
workspace/catalog/<name>/, with its metadata in workspace/catalog/catalog.json."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from core.data import MIN_EXAMPLES, DataError, Dataset, load_dataset, parse_dataset, read_table
from core.runs import now_iso, read_json, write_json

SPLITS = ("AUTO_SPLIT", "RANDOM", "CUSTOM", "SEQ", "NO_SPLIT")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
TRUE = {"true", "1", "yes", "y", "t", "eval"}


def _row_key(example: dict) -> str:
    return json.dumps({k: v for k, v in example.items() if k != "line"}, sort_keys=True, ensure_ascii=False)


def _in_eval(example: dict, fraction: float) -> bool:
    """Deterministic: the same row lands on the same side every time, whatever the file order."""
    h = int.from_bytes(hashlib.sha1(_row_key(example).encode()).digest()[:8], "big")
    return h / 2 ** 64 < fraction


def split_examples(data: Dataset, method: str = "AUTO_SPLIT", eval_fraction: float = 0.2,
                   column: str | None = None) -> tuple[list[dict], list[dict]]:
    method = method.upper()
    if method not in SPLITS:
        raise DataError(f"unknown split method `{method}`", hint=f"Use one of {', '.join(SPLITS)}.")
    ex = data.examples
    if method == "NO_SPLIT":
        return list(ex), []
    if method == "AUTO_SPLIT":
        n = len(ex)
        if n < 500:
            return list(ex), []
        eval_fraction = 0.2 if n <= 50_000 else 10_000 / n
        method = "RANDOM"
    if method == "RANDOM":
        if not 0 < eval_fraction < 1:
            raise DataError(f"eval fraction must be between 0 and 1, got {eval_fraction}")
        return [e for e in ex if not _in_eval(e, eval_fraction)], [e for e in ex if _in_eval(e, eval_fraction)]
    if not column:
        raise DataError(f"{method} needs a column", hint="Name it with --split-column.")
    df, lines = read_table(data.path)
    if column not in df.columns:
        raise DataError(f"column `{column}` is not in the file", file=data.path, field=column)
    value = dict(zip(lines, df[column]))
    if method == "CUSTOM":
        return ([e for e in ex if str(value[e["line"]]).strip().lower() not in TRUE],
                [e for e in ex if str(value[e["line"]]).strip().lower() in TRUE])
    ordered = sorted(ex, key=lambda e: value[e["line"]])  # SEQ
    cut = round(len(ordered) * (1 - eval_fraction))
    return ordered[:cut], ordered[cut:]


def catalog_path(workspace: str | Path) -> Path:
    return Path(workspace) / "catalog" / "catalog.json"


def list_datasets(workspace: str | Path) -> dict[str, dict]:
    return read_json(catalog_path(workspace), {}) or {}


def _write_jsonl(path: Path, examples: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for e in examples:
            row = {k: v for k, v in e.items() if k != "line"}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def register_dataset(workspace: str | Path, source: str | Path, name: str, split: str = "AUTO_SPLIT",
                     eval_fraction: float = 0.2, split_column: str | None = None,
                     input_column: str | None = None, output_column: str | None = None,
                     examples: list[dict] | None = None, format: str | None = None) -> dict:
    """Validate, split and store a dataset under a name. `examples` (e.g. the valid rows after safe
    fixes) replace the file's own rows, so a file with bad rows can be registered as a fixed copy.
    Returns the catalog entry."""
    if not NAME.match(name or ""):
        raise DataError(f"`{name}` is not a valid dataset name",
                        hint="Use letters, digits, '.', '-' and '_' (up to 64), starting with a letter or digit.")
    if examples is None:
        data = load_dataset(source, input_column, output_column, require_output=False, format=format)
    else:
        data, _ = parse_dataset(source, input_column, output_column, format, require_output=False)
        data.examples = examples
    train, held = split_examples(data, split, eval_fraction, split_column)
    if len(train) < MIN_EXAMPLES and data.format in ("prompt_answer", "chat"):
        raise DataError(f"the split leaves {len(train)} training examples; tuning needs at least {MIN_EXAMPLES}",
                        file=source, hint="Lower the eval fraction or add examples.")
    folder = Path(workspace) / "catalog" / name
    tmp = folder.with_name(f".{name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _write_jsonl(tmp / "train.jsonl", train)
    if held:
        _write_jsonl(tmp / "eval.jsonl", held)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    entry = {"name": name, "source": str(Path(source).resolve()), "format": data.format, "split": split.upper(),
             "rows": len(data.examples), "train_rows": len(train), "eval_rows": len(held),
             "train_file": str(folder / "train.jsonl"), "eval_file": str(folder / "eval.jsonl") if held else None,
             "created": now_iso()}
    catalog = list_datasets(workspace)
    catalog[name] = entry
    write_json(catalog_path(workspace), catalog)
    return entry


def delete_dataset(workspace: str | Path, name: str) -> None:
    catalog = list_datasets(workspace)
    if name not in catalog or not NAME.match(name):
        raise DataError(f"no dataset named `{name}`")
    shutil.rmtree(Path(workspace) / "catalog" / name, ignore_errors=True)
    del catalog[name]
    write_json(catalog_path(workspace), catalog)
