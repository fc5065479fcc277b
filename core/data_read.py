"""Reading a data file into a table: the file's bytes (gunzipped when it ends in .gz), decoded to text
(BOMs, UTF-16/32, a Windows-1252 fallback with a note), then parsed as CSV/TSV (delimiter sniffed),
Parquet or JSON (core.data_json). Cells keep the file's own types; core.data_formats checks them."""
from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections import Counter
from pathlib import Path

import pandas as pd

from core.data_json import read_json
from core.data_types import DataError, printable

SUPPORTED_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")


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
    return read_json(text, path, warnings)


def _read_parquet(raw: bytes, path: Path) -> pd.DataFrame:
    """Through pyarrow to plain Python values, so nested columns arrive as lists of dicts (chat
    `messages` exported by Hugging Face datasets), nullable integers as ints, and nothing is stringified."""
    import pyarrow.parquet as pq  # heavy, and only Parquet files need it: imported on first use

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
