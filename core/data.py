"""Load examples from JSONL, JSON, CSV/TSV or Parquet (optionally .gz) in every format people bring:
prompt → answer tables, chat conversations, preference pairs and unlabeled prompts. Every error names
the file, the line (or row) and the field, and says what to do next, because an opaque dataset error is
the most common way a tuning run dies before it starts. core.datacheck builds the full report.

This module holds the entry points, load_dataset and parse_dataset, and re-exports the names the rest of
the project imports from here. The work is done in core.data_read (file → table; JSON in core.data_json),
core.data_formats (detecting the format, parsing its rows), core.data_cells (checking each cell's value)
and core.data_types (DataError and Dataset, which all of them share)."""
from __future__ import annotations

from pathlib import Path

from core.data_cells import Cells
from core.data_formats import (
    ANSWER_MISSING,
    FORMATS,
    KNOWN_COLUMNS,
    PARSERS,
    PREFERENCE_COLUMNS,
    ROLES,
    UNLABELED_COLUMNS,
    detect_columns,
    detect_format,
    missing_answer_column,
)
from core.data_read import SUPPORTED_SUFFIXES, data_suffix, read_table
from core.data_types import DataError, Dataset, printable

__all__ = ["ANSWER_MISSING", "FORMATS", "KNOWN_COLUMNS", "MIN_EXAMPLES", "PREFERENCE_COLUMNS", "ROLES",
           "SUPPORTED_SUFFIXES", "UNLABELED_COLUMNS", "DataError", "Dataset", "data_suffix", "detect_columns", "detect_format",
           "load_dataset", "parse_dataset", "printable", "read_table"]

MIN_EXAMPLES = 10  # as the reference workflow: fewer training examples (after the split) cannot tune


def load_dataset(path: str | Path, input_column: str | None = None, output_column: str | None = None,
                 require_output: bool = True, format: str | None = None) -> Dataset:
    """Load and validate a file; the format and columns are detected unless given. Raises DataError at
    the first problem (core.datacheck.check_dataset lists them all)."""
    dataset, problems = parse_dataset(path, input_column, output_column, format, require_output)
    if problems:
        raise problems[0]
    return dataset


def parse_dataset(path: str | Path, input_column: str | None = None, output_column: str | None = None,
                  format: str | None = None, require_output: bool = True) -> tuple[Dataset, list[DataError]]:
    """The valid examples and a DataError for every invalid row. Problems with the file as a whole
    (unreadable, no usable columns) are raised, always as DataError."""
    path = Path(path)
    notes: list[str] = []
    warnings: list[DataError] = []
    df, lines = read_table(path, notes, warnings)
    columns = [str(c) for c in df.columns]
    if len(df) == 0:
        raise DataError("the file has a header but no rows", file=path, hint="Add at least 10 examples.")
    if format is None:
        format = detect_format(columns)
        if input_column and format not in ("chat", "preference"):
            format = "prompt_answer"  # the user named the columns
        if format == "unlabeled" and require_output:
            format = None  # a prompt column alone cannot train a supervised run
    if format not in FORMATS:
        raise DataError(f"no prompt/answer columns found; the file has {', '.join(columns) or 'no columns'}",
                        file=path, hint="Name them input_text/output_text (or prompt/label), "
                                        "or map them with --input-column/--output-column.")
    needed = {"chat": [("messages",), ("contents",)], "preference": PREFERENCE_COLUMNS}.get(format)
    if needed and not any(all(c in columns for c in cols) for cols in needed):
        want = " or ".join("/".join(cols) for cols in needed)
        raise DataError(f"is read as {format} data but has no {want} column(s); it has {', '.join(columns)}",
                        file=path, hint="Choose the format that matches the file, or let it be detected.")
    parse = PARSERS[format]
    cells = Cells(path)
    columns_used, rows = parse(df, lines, path, columns, input_column, output_column, cells)
    examples = [r for r in rows if not isinstance(r, DataError)]
    problems = [r for r in rows if isinstance(r, DataError)]
    if format == "unlabeled":  # say that no answer column was found, and whether one looks misnamed
        missing_answer_column(df, columns, columns_used[0], path, notes, warnings)
    return Dataset(path=path, examples=examples, input_column=columns_used[0], output_column=columns_used[1],
                   format=format, notes=notes, warnings=warnings + cells.warnings()), problems
