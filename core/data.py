"""Load examples from JSONL, JSON, CSV/TSV or Parquet (optionally .gz) in every format people bring:
prompt → answer tables, chat conversations, preference pairs and unlabeled prompts. Every error names
the file, the line (or row) and the field, and says what to do next, because an opaque dataset error is
the most common way a tuning run dies before it starts. core.datacheck builds the full report."""
from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

# Column pairs recognised without a mapping, in order of preference.
KNOWN_COLUMNS = [("input_text", "output_text"), ("prompt", "label"), ("prompt", "completion"),
                 ("input", "output"), ("text", "label")]
PREFERENCE_COLUMNS = [("input_text", "candidate_0", "candidate_1", "choice"), ("prompt", "chosen", "rejected")]
UNLABELED_COLUMNS = ("input_text", "prompt", "text", "input")
SUPPORTED_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
FORMATS = ("prompt_answer", "chat", "preference", "unlabeled")
ROLES = {"system": "system", "user": "user", "model": "assistant", "assistant": "assistant"}
MIN_EXAMPLES = 10  # as the reference workflow: fewer training examples (after the split) cannot tune


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
    """prompt_answer: {input_text, output_text, line}; chat: {messages, line};
    preference: {prompt, chosen, rejected, line}; unlabeled: {input_text, line}."""
    input_column: str
    output_column: str
    format: str = "prompt_answer"
    notes: list[str] = field(default_factory=list)
    """Things the reader did on the way that the user should know (e.g. a non-UTF-8 encoding)."""

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def labels(self) -> list[str]:
        return sorted({e["output_text"] for e in self.examples if "output_text" in e})

    def label_counts(self) -> dict[str, int]:
        return dict(Counter(e["output_text"] for e in self.examples if "output_text" in e).most_common())


def data_suffix(path: str | Path) -> str:
    """The data type suffix, looking through a trailing .gz (`x.jsonl.gz` → `.jsonl`)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.suffix.lower() == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"not a valid gzip file ({e})", file=path) from e
    return raw


def _decode(raw: bytes, path: Path, notes: list[str]) -> str:
    """UTF-8 (BOM or not), UTF-16 with a BOM; else Windows-1252 with a note, never silently."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            raise DataError(f"not UTF-8 text (byte {e.start})", file=path, line=line,
                            hint="Save the file as UTF-8 and upload it again.") from e
        notes.append(f"{path.name} is not UTF-8 (first odd byte on line {line}); it was read as Windows-1252. "
                     "Check accented characters in the preview, or save the file as UTF-8.")
        return text


def read_table(path: str | Path, notes: list[str] | None = None) -> tuple[pd.DataFrame, list[int]]:
    """Read a file into a DataFrame and the source line number of each row (1-based)."""
    path = Path(path)
    notes = [] if notes is None else notes
    if not path.exists():
        raise DataError("file not found", file=path, hint="Check the path, or upload the file on the Datasets page.")
    if path.is_dir():
        raise DataError("is a folder, not a data file", file=path)
    suffix = data_suffix(path)
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataError(f"unsupported file type `{suffix or '(none)'}`", file=path,
                        hint=f"Use one of {', '.join(SUPPORTED_SUFFIXES)} (optionally .gz).")
    raw = _read_bytes(path) if path.stat().st_size else b""
    if not raw.strip():
        raise DataError("the file is empty", file=path, hint="Add at least 10 examples.")
    if suffix == ".parquet":
        try:
            df = pd.read_parquet(io.BytesIO(raw))
        except Exception as e:  # pyarrow raises several types for corrupt files
            raise DataError(f"cannot read Parquet: {e}", file=path) from e
        return df, [i + 1 for i in range(len(df))]
    text = _decode(raw, path, notes)
    if suffix in (".csv", ".tsv"):
        try:
            df = pd.read_csv(io.StringIO(text), sep="\t" if suffix == ".tsv" else _sniff_delimiter(text),
                             dtype=str, keep_default_na=False)
        except pd.errors.EmptyDataError as e:
            raise DataError("the file has no rows", file=path, hint="Add at least 10 examples.") from e
        except (pd.errors.ParserError, csv.Error) as e:
            raise DataError(f"cannot parse CSV: {e}", file=path,
                            hint="Check quoting: a field with commas or line breaks must be in double quotes.") from e
        return df, [i + 2 for i in range(len(df))]  # +1 for 1-based, +1 for the header line
    return _read_json(text, path)


def _sniff_delimiter(text: str) -> str:
    """The CSV delimiter among , ; tab |; a single-column file has none, so ',' is right for it."""
    try:
        return csv.Sniffer().sniff(text[:20_000], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _read_json(text: str, path: Path) -> tuple[pd.DataFrame, list[int]]:
    if text.lstrip().startswith("["):  # a JSON array of objects
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"invalid JSON: {e.msg} (column {e.colno})", file=path, line=e.lineno) from e
        bad = next((i for i, r in enumerate(rows) if not isinstance(r, dict)), None)
        if bad is not None:
            raise DataError(f"item {bad + 1} of the JSON array is not an object", file=path,
                            hint="The array must hold one object per example.")
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


def detect_format(columns: list[str]) -> str | None:
    if "messages" in columns or "contents" in columns:
        return "chat"
    if any(all(c in columns for c in cols) for cols in PREFERENCE_COLUMNS):
        return "preference"
    if detect_columns(columns):
        return "prompt_answer"
    if len(columns) == 1 or any(c in columns for c in UNLABELED_COLUMNS):
        return "unlabeled"
    return None


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
    (unreadable, no usable columns) are raised."""
    path = Path(path)
    notes: list[str] = []
    df, lines = read_table(path, notes)
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
    parse = {"prompt_answer": _parse_prompt_answer, "chat": _parse_chat,
             "preference": _parse_preference, "unlabeled": _parse_unlabeled}[format]
    columns_used, rows = parse(df, lines, path, columns, input_column, output_column)
    examples = [r for r in rows if not isinstance(r, DataError)]
    problems = [r for r in rows if isinstance(r, DataError)]
    return Dataset(path=path, examples=examples, input_column=columns_used[0], output_column=columns_used[1],
                   format=format, notes=notes), problems


def _require(path, columns, *names):
    for col in names:
        if col and col not in columns:
            raise DataError(f"column `{col}` is not in the file (it has {', '.join(columns)})", file=path, field=col)


def _parse_prompt_answer(df, lines, path, columns, input_column, output_column):
    if input_column is None or output_column is None:
        found = detect_columns(columns)
        if found is None:
            raise DataError(f"no prompt/answer columns found; the file has {', '.join(columns)}", file=path,
                            hint="Name them input_text/output_text (or prompt/label), "
                                 "or map them with --input-column/--output-column.")
        input_column, output_column = input_column or found[0], output_column or found[1]
    _require(path, columns, input_column, output_column)
    rows = []
    for line, inp, out in zip(lines, df[input_column], df[output_column]):
        try:
            rows.append({"input_text": _cell_text(inp, path, line, input_column),
                         "output_text": _cell_text(out, path, line, output_column), "line": line})
        except DataError as e:
            rows.append(e)
    return (input_column, output_column), rows


def _parse_unlabeled(df, lines, path, columns, input_column, output_column):
    col = input_column or next((c for c in UNLABELED_COLUMNS if c in columns), columns[0])
    _require(path, columns, col)
    rows = []
    for line, inp in zip(lines, df[col]):
        try:
            rows.append({"input_text": _cell_text(inp, path, line, col), "line": line})
        except DataError as e:
            rows.append(e)
    return (col, ""), rows


def _parse_preference(df, lines, path, columns, input_column, output_column):
    vertex = all(c in columns for c in PREFERENCE_COLUMNS[0])
    rows = []
    for i, line in enumerate(lines):
        r = df.iloc[i]
        try:
            if vertex:
                prompt = _cell_text(r["input_text"], path, line, "input_text")
                cands = [_cell_text(r[f"candidate_{k}"], path, line, f"candidate_{k}") for k in (0, 1)]
                choice = str(r["choice"]).strip()
                if choice not in ("0", "1"):
                    raise DataError(f"must be 0 or 1, got {r['choice']!r}", file=path, line=line, field="choice",
                                    hint="choice names the better candidate: 0 or 1.")
                chosen, rejected = cands[int(choice)], cands[1 - int(choice)]
            else:
                prompt = _cell_text(r["prompt"], path, line, "prompt")
                chosen = _cell_text(r["chosen"], path, line, "chosen")
                rejected = _cell_text(r["rejected"], path, line, "rejected")
            rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected, "line": line})
        except DataError as e:
            rows.append(e)
    return (("input_text", "choice") if vertex else ("prompt", "chosen")), rows


def _parse_chat(df, lines, path, columns, input_column, output_column):
    key = "messages" if "messages" in columns else "contents"
    rows = []
    for i, line in enumerate(lines):
        r = df.iloc[i]
        try:
            rows.append({"messages": _chat_messages(r, key, path, line), "line": line})
        except DataError as e:
            rows.append(e)
    return (key, ""), rows


def _chat_messages(row, key: str, path: Path, line: int) -> list[dict]:
    turns = row[key]
    if not isinstance(turns, list) or not turns:
        raise DataError("must be a non-empty list of turns", file=path, line=line, field=key)
    messages = []
    system = row.get("systemInstruction") if key == "contents" else None
    if isinstance(system, dict):
        system = " ".join(p.get("text", "") for p in system.get("parts", []) if isinstance(p, dict))
    if isinstance(system, str) and system.strip():
        messages.append({"role": "system", "content": system})
    for n, turn in enumerate(turns, start=1):
        where = f"{key}[{n}]"
        if not isinstance(turn, dict):
            raise DataError("each turn must be an object with a role", file=path, line=line, field=where)
        role = ROLES.get(str(turn.get("role", "")).lower())
        if role is None:
            raise DataError(f"unknown role {turn.get('role')!r}", file=path, line=line, field=f"{where}.role",
                            hint="Use system, user, model or assistant.")
        if key == "messages":
            content = turn.get("content")
        else:
            content = " ".join(p.get("text", "") for p in turn.get("parts", []) if isinstance(p, dict))
        if not isinstance(content, str) or not content.strip():
            raise DataError("is empty; every turn needs text", file=path, line=line,
                            field=f"{where}.{'content' if key == 'messages' else 'parts'}")
        messages.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError("has no model/assistant turn to learn from", file=path, line=line, field=key,
                        hint="Each conversation needs at least one answer by the model.")
    return messages


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
