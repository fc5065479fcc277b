"""Load examples from JSONL, JSON, CSV/TSV or Parquet (optionally .gz) in every format people bring:
prompt → answer tables, chat conversations, preference pairs and unlabeled prompts. Every error names
the file, the line (or row) and the field, and says what to do next, because an opaque dataset error is
the most common way a tuning run dies before it starts. core.datacheck builds the full report."""
from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
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
    """A dataset problem a person can fix: where it is, what is wrong, what to do. `kind` (optional) is a
    stable name for grouping in the check report when the message itself names a value."""

    def __init__(self, message: str, file: str | Path | None = None, line: int | None = None,
                 field: str | None = None, hint: str | None = None, kind: str | None = None):
        message, field, hint = printable(message), field and printable(field), hint and printable(hint)
        self.message, self.file, self.line, self.field, self.hint, self.kind = message, file, line, field, hint, kind
        where = ", ".join(p for p in (
            printable(Path(file).name) if file else "",
            f"line {line}" if line is not None else "",
            f"field `{field}`" if field else "") if p)
        text = f"{where}: {message}" if where else message
        super().__init__(f"{text} {hint}" if hint else text)

    def __reduce__(self):  # pickled by Streamlit's cache (Dataset.warnings): keep every part, not just the text
        return type(self), (self.message, self.file, self.line, self.field, self.hint, self.kind)


_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` safe to print and to store as UTF-8: a lone surrogate (half of a UTF-16 pair, which JSON's
    \\uD800 escapes can produce) is shown as its escape instead of failing later."""
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass
class Dataset:
    path: Path
    examples: list[dict]
    """prompt_answer: {input_text, output_text, line}; chat: {messages, line};
    preference: {prompt, chosen, rejected, line}; unlabeled: {input_text, line}. `line` is the 1-based
    line an editor shows (CSV/TSV: the header is line 1); in a JSON array file, the item's number."""
    input_column: str
    output_column: str
    format: str = "prompt_answer"
    notes: list[str] = field(default_factory=list)
    """Things the reader did on the way that the user should know (e.g. a non-UTF-8 encoding)."""
    warnings: list[DataError] = field(default_factory=list)
    """Values the reader accepted but changed or doubts, each with its line and field (a number read as
    text, a key given twice); the check report lists them as warnings."""

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
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot be read ({e.strerror or e})", file=path,
                        hint="Check that the file exists and is readable.") from e
    if path.suffix.lower() == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:  # not gzip, cut off, or corrupt inside
            raise DataError(f"not a valid gzip file ({e})", file=path,
                            hint="It may be cut off: compress it again, or upload it uncompressed.") from e
    return raw


_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"),
         (b"\xfe\xff", "utf-16"))


def _decode(raw: bytes, path: Path, notes: list[str]) -> str:
    """UTF-8 (BOM or not), UTF-16/32 with a BOM; else Windows-1252 with a note, never silently."""
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(codec)
            except UnicodeDecodeError as e:
                line = raw[:e.start].decode(codec, errors="replace").count("\n") + 1
                raise DataError(f"not valid {codec.upper()} text ({e.reason} at byte {e.start})", file=path,
                                line=line, hint="The file may be cut off or mix encodings: save it as UTF-8 "
                                                "and upload it again.") from e
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            raise DataError(f"not UTF-8 text (byte {e.start})", file=path, line=line,
                            hint="Save the file as UTF-8 and upload it again.") from e
        notes.append(f"{printable(path.name)} is not UTF-8 (first odd byte on line {line}); it was read as "
                     "Windows-1252. Check accented characters in the preview, or save the file as UTF-8.")
        return text


def read_table(path: str | Path, notes: list[str] | None = None,
               warnings: list[DataError] | None = None) -> tuple[pd.DataFrame, list[int]]:
    """Read a file into a DataFrame and the source line number of each row (1-based, as an editor shows
    it; for a JSON array, the item's number). Cells keep the file's own types (text, numbers, lists),
    which the parsers check. Raises DataError, and only DataError, for a file that cannot be read."""
    path = Path(path)
    notes = [] if notes is None else notes
    warnings = [] if warnings is None else warnings
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
        df = _read_parquet(raw, path)
        return df, [i + 1 for i in range(len(df))]
    text = _decode(raw, path, notes)
    if not text or text.isspace():  # a byte-order mark and nothing else
        raise DataError("the file is empty (it holds only a byte-order mark or spaces)", file=path,
                        hint="Add at least 10 examples.")
    if suffix in (".csv", ".tsv"):
        return _read_csv(text, path, suffix, warnings)
    return _read_json(text, path, warnings)


def _read_parquet(raw: bytes, path: Path) -> pd.DataFrame:
    """Through pyarrow to plain Python values, so nested columns arrive as lists of dicts (chat
    `messages` exported by Hugging Face datasets), nullable integers as ints, and nothing is stringified."""
    import pyarrow.parquet as pq

    try:
        twice = next((n for n, c in Counter(pq.read_schema(io.BytesIO(raw)).names).items() if c > 1), None)
        table = None if twice else pq.read_table(io.BytesIO(raw))
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise DataError(f"cannot read Parquet: {e}", file=path,
                        hint="The file may be cut off or not Parquet: export it again.") from e
    if table is None:
        raise DataError("the column name appears more than once", file=path, field=twice,
                        hint="Give every column its own name and export again.")
    names = [n for n in table.column_names if not re.fullmatch(r"__index_level_\d+__", n)]
    try:
        return pd.DataFrame(table.select(names).to_pylist(), columns=names, dtype=object)
    except Exception as e:  # a column type pyarrow cannot turn into Python values (dates out of range, …)
        raise DataError(f"cannot read Parquet: a column has values that cannot be converted ({e})", file=path,
                        hint="Store the texts as string columns and export again.") from e


def _read_csv(text: str, path: Path, suffix: str, warnings: list[DataError]) -> tuple[pd.DataFrame, list[int]]:
    sep = "\t" if suffix == ".tsv" else _sniff_delimiter(text)
    name = suffix[1:].upper()
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as e:
        raise DataError("the file has no rows", file=path, hint="Add at least 10 examples.") from e
    except (ValueError, csv.Error) as e:  # pandas' ParserError is a ValueError
        line, why = _csv_failure(text, sep, str(e))
        raise DataError(f"cannot parse {name}: {why}", file=path, line=line,
                        hint="Check quoting: a field with commas or line breaks must be in double quotes.") from e
    if not isinstance(df.index, pd.RangeIndex):  # rows one field wider than the header: pandas shifts the columns
        line, why = _csv_failure(text, sep, "")
        raise DataError(f"cannot parse {name}: {why or 'rows have more fields than the header'}", file=path, line=line,
                        hint="Every row needs as many fields as the header: quote fields that hold the delimiter.")
    header = next(csv.reader(io.StringIO(text[:1_000_000], newline=""), delimiter=sep), [])
    for col, n in Counter(c.lstrip("\ufeff") for c in header).items():
        if n > 1:
            warnings.append(DataError(f"the header names this column {n} times; the later ones are read as "
                                      f"`{col}.1`, …", file=path, line=1, field=col, kind="column named twice",
                                      hint="Give every column its own name."))
    return df, _csv_lines(text, sep, len(df))


def _csv_lines(text: str, sep: str, rows: int) -> list[int]:
    """The line each data row starts on. One row per line is the common case; quoted line breaks or blank
    lines shift the rest, so then the rows are found again with the csv module."""
    simple = [i + 2 for i in range(rows)]  # +1 for 1-based, +1 for the header line
    if text.count("\n") + (not text.endswith("\n")) == rows + 1:
        return simple
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    starts, start = [], 1
    try:
        for row in reader:
            if row:
                starts.append(start)
            start = reader.line_num + 1
    except csv.Error:  # a field over the csv module's size limit: keep the simple numbering
        return simple
    return starts[1:] if len(starts) == rows + 1 else simple


def _csv_failure(text: str, sep: str, message: str) -> tuple[int | None, str]:
    """Where pandas failed, as the line an editor shows (pandas counts records or rows from 0), and why."""
    unclosed = "a quoted field starts on this line and is never closed"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    width, start, last = None, 1, None
    try:
        for row in reader:
            if row:
                last = start
                if width is None:
                    width = len(row)
                elif len(row) > width:
                    return start, f"this row has {len(row)} fields but the header has {width}"
            start = reader.line_num + 1
    except csv.Error as e:  # the record that starts on `start` fails here too
        if "EOF" in message:
            return start, unclosed
        return (None, message) if "field larger" in str(e) else (start, str(e))
    return (last, unclosed) if "EOF" in message else (None, message)


def _sniff_delimiter(text: str) -> str:
    """The CSV delimiter among , ; tab |; a single-column file has none, so ',' is right for it."""
    try:
        return csv.Sniffer().sniff(text[:20_000], delimiters=",;\t|").delimiter
    except csv.Error:  # rows disagree (one bad row is enough): go by the header line
        header = text.lstrip("\ufeff\r\n").split("\n", 1)[0]
        counts = {d: header.count(d) for d in ",;\t|"}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


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
            bad = next((k for k in obj if _SURROGATE.search(k)), None)
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


def _read_json(text: str, path: Path, warnings: list[DataError]) -> tuple[pd.DataFrame, list[int]]:
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
    parse = {"prompt_answer": _parse_prompt_answer, "chat": _parse_chat,
             "preference": _parse_preference, "unlabeled": _parse_unlabeled}[format]
    cells = _Cells(path)
    columns_used, rows = parse(df, lines, path, columns, input_column, output_column, cells)
    examples = [r for r in rows if not isinstance(r, DataError)]
    problems = [r for r in rows if isinstance(r, DataError)]
    return Dataset(path=path, examples=examples, input_column=columns_used[0], output_column=columns_used[1],
                   format=format, notes=notes, warnings=warnings + cells.warnings()), problems


def _require(path, columns, *names):
    for col in names:
        if col and col not in columns:
            raise DataError(f"column `{col}` is not in the file (it has {', '.join(columns)})", file=path, field=col)


def _parse_prompt_answer(df, lines, path, columns, input_column, output_column, cells):
    if input_column is None or output_column is None:
        found = detect_columns(columns)
        if found is None:
            raise DataError(f"no prompt/answer columns found; the file has {', '.join(columns)}", file=path,
                            hint="Name them input_text/output_text (or prompt/label), "
                                 "or map them with --input-column/--output-column.")
        input_column, output_column = input_column or found[0], output_column or found[1]
    _require(path, columns, input_column, output_column)
    rows = []
    for line, inp, out in zip(lines, _column(df, input_column), _column(df, output_column)):
        try:
            rows.append({"input_text": cells.text(inp, line, input_column),
                         "output_text": cells.text(out, line, output_column), "line": line})
        except DataError as e:
            rows.append(e)
    return (input_column, output_column), rows


def _column(df: pd.DataFrame, name: str) -> list:
    col = df[name]
    if isinstance(col, pd.DataFrame):  # the name is given twice (pandas keeps both): the first one
        col = col.iloc[:, 0]
    return col.tolist()


def _parse_unlabeled(df, lines, path, columns, input_column, output_column, cells):
    col = input_column or next((c for c in UNLABELED_COLUMNS if c in columns), columns[0])
    _require(path, columns, col)
    rows = []
    for line, inp in zip(lines, _column(df, col)):
        try:
            rows.append({"input_text": cells.text(inp, line, col), "line": line})
        except DataError as e:
            rows.append(e)
    return (col, ""), rows


def _parse_preference(df, lines, path, columns, input_column, output_column, cells):
    vertex = all(c in columns for c in PREFERENCE_COLUMNS[0])
    names = PREFERENCE_COLUMNS[0] if vertex else PREFERENCE_COLUMNS[1]
    rows = []
    for line, *values in zip(lines, *(_column(df, c) for c in names)):
        r = dict(zip(names, values))
        try:
            if vertex:
                prompt = cells.text(r["input_text"], line, "input_text")
                cands = [cells.text(r[f"candidate_{k}"], line, f"candidate_{k}") for k in (0, 1)]
                choice = _choice(r["choice"])
                if choice is None:
                    raise DataError(f"must be 0 or 1, got {_short(r['choice'])}", file=path, line=line,
                                    field="choice", hint="choice names the better candidate: 0 or 1.",
                                    kind="`choice` must be 0 or 1")
                chosen, rejected = cands[choice], cands[1 - choice]
            else:
                prompt = cells.text(r["prompt"], line, "prompt")
                chosen = cells.text(r["chosen"], line, "chosen")
                rejected = cells.text(r["rejected"], line, "rejected")
            rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected, "line": line})
        except DataError as e:
            rows.append(e)
    return (("input_text", "choice") if vertex else ("prompt", "chosen")), rows


def _choice(value) -> int | None:
    """0 or 1 from a choice cell: 0/1 as numbers (also 0.0/1.0, nullable integers) or as text; else None."""
    if isinstance(value, str):
        return {"0": 0, "1": 1, "0.0": 0, "1.0": 1}.get(value.strip())
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _NUMBER):
        return None
    return int(value) if value in (0, 1) else None


def _parse_chat(df, lines, path, columns, input_column, output_column, cells):
    key = "messages" if "messages" in columns else "contents"
    system = _column(df, "systemInstruction") if key == "contents" and "systemInstruction" in columns else None
    rows = []
    for i, (line, turns) in enumerate(zip(lines, _column(df, key))):
        try:
            rows.append({"messages": _chat_messages(turns, system[i] if system else None, key, path, line),
                         "line": line})
        except DataError as e:
            rows.append(e)
    return (key, ""), rows


def _chat_messages(turns, system, key: str, path: Path, line: int) -> list[dict]:
    if isinstance(turns, (tuple, np.ndarray)):
        turns = list(turns)
    if not isinstance(turns, list) or not turns:
        raise DataError("must be a non-empty list of turns", file=path, line=line, field=key,
                        hint='Each turn is an object like {"role": "user", "content": "…"}.')
    messages = []
    if isinstance(system, dict):
        system = _parts_text(system, "systemInstruction", path, line) if "parts" in system else None
    elif not (system is None or isinstance(system, str) or _missing(system)):
        raise DataError(f"must be an object with parts, got {_kind(system)}", file=path, line=line,
                        field="systemInstruction", hint='Write it as {"parts": [{"text": "…"}]}.')
    if isinstance(system, str) and system.strip():
        messages.append({"role": "system", "content": _no_surrogate(system, path, line, "systemInstruction")})
    for n, turn in enumerate(turns, start=1):
        where = f"{key}[{n}]"
        if not isinstance(turn, dict):
            raise DataError(f"each turn must be an object with a role, got {_kind(turn)}", file=path, line=line,
                            field=where, kind="each turn must be an object with a role")
        role = ROLES.get(str(turn.get("role", "")).lower())
        if role is None:
            raise DataError(f"unknown role {_short(turn.get('role'))}", file=path, line=line, field=f"{where}.role",
                            hint="Use system, user, model or assistant.", kind="unknown role")
        if key == "messages":
            content, at = turn.get("content"), f"{where}.content"
            if not (content is None or isinstance(content, str)):
                raise DataError(f"is {_kind(content)}, expected text", file=path, line=line, field=at,
                                kind="turn content is not text", hint="Each turn's content must be a string.")
        else:
            content, at = _parts_text(turn, where, path, line), f"{where}.parts"
        if not isinstance(content, str) or not content.strip():
            raise DataError("is empty; every turn needs text", file=path, line=line, field=at)
        messages.append({"role": role, "content": _no_surrogate(content, path, line, at)})
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError("has no model/assistant turn to learn from", file=path, line=line, field=key,
                        hint="Each conversation needs at least one answer by the model.")
    asked = False
    for m in messages:
        if m["role"] == "user":
            asked = True
        elif m["role"] == "assistant" and asked:
            return messages
    raise DataError("has no user turn before the model's answer, so it gives nothing to learn from", file=path,
                    line=line, field=key, hint="Start the conversation with a user turn that the model answers.")


def _parts_text(obj: dict, where: str, path: Path, line: int) -> str:
    """The text of a Gemini-style `parts` list; parts without text (images, files) add nothing."""
    parts = obj.get("parts", [])
    if isinstance(parts, (tuple, np.ndarray)):
        parts = list(parts)
    if not isinstance(parts, list):
        raise DataError(f'must be a list of parts like [{{"text": "…"}}], got {_kind(parts)}', file=path, line=line,
                        field=f"{where}.parts", kind="parts must be a list")
    texts = []
    for k, part in enumerate(parts, start=1):
        if not isinstance(part, dict):
            raise DataError(f'each part must be an object like {{"text": "…"}}, got {_kind(part)}', file=path,
                            line=line, field=f"{where}.parts[{k}]", kind="each part must be an object")
        if "text" in part:
            if not isinstance(part["text"], str):
                raise DataError(f"is {_kind(part['text'])}, expected text", file=path, line=line,
                                field=f"{where}.parts[{k}].text", kind="part text is not text")
            texts.append(part["text"])
    return " ".join(texts)


_NUMBER = (int, float, Decimal, np.integer, np.floating)


def _missing(value) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, (float, np.floating)) and math.isnan(value))


def _short(value, limit: int = 60) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _kind(value) -> str:
    """What a value is, in words, for messages: "null", "a number (7)", "a list", …"""
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return f"a boolean ({str(bool(value)).lower()})"
    if isinstance(value, _NUMBER):
        return f"a number ({_short(value)})"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (bytes, bytearray)):
        return "binary data"
    return f"a {type(value).__name__} ({_short(value)})"


def _no_surrogate(text: str, path: Path, line: int, field: str) -> str:
    if text.isascii() or not _SURROGATE.search(text):
        return text
    raise DataError(f"holds a lone surrogate ({printable(_SURROGATE.search(text).group())}), half of a "
                    "UTF-16 pair, which is not text", file=path, line=line, field=field,
                    kind="lone surrogate in the text", hint="Fix the \\uD800–\\uDFFF escape in the file.")


class _Cells:
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
        elif _missing(value):
            raise DataError("is missing; every example needs one", file=path, line=line, field=field,
                            hint="Fill it in or remove the row.")
        elif isinstance(value, (dict, list, tuple, np.ndarray)):
            got = "dict" if isinstance(value, dict) else "list"
            raise DataError(f"must be text, got {got}", file=path, line=line, field=field)
        elif isinstance(value, (bool, np.bool_, *_NUMBER)):
            if isinstance(value, (float, Decimal, np.floating)) and not math.isfinite(value):
                raise DataError(f"is {_kind(value)}, expected text", file=path, line=line, field=field,
                                kind=f"`{field}` is a number that is not finite", hint="Replace it with text.")
            text = str(value)
            kind = "boolean" if isinstance(value, (bool, np.bool_)) else "number"
            seen = self.coerced.setdefault((field, kind), [line, 0, value])
            seen[1] += 1
        else:
            raise DataError(f"is {_kind(value)}, expected text", file=path, line=line, field=field,
                            kind=f"`{field}` is not text", hint="Store the column as text.")
        text = _no_surrogate(text, path, line, field)
        if not text.strip():
            raise DataError("is empty; every example needs text here", file=path, line=line, field=field,
                            hint="Fill it in or remove the row.")
        return text

    def warnings(self) -> list[DataError]:
        out = []
        for (name, kind), (line, count, value) in self.coerced.items():
            more = f"; so were {count - 1} more rows" if count > 1 else ""
            out.append(DataError(f"is a {kind} ({_short(value)}), read as the text {_short(str(value))}{more}",
                                 file=self.path, line=line, field=name, kind=f"`{name}` holds {kind}s, read as text",
                                 hint="Put the value in quotes if it is text; check the column if it is not."))
        return out
