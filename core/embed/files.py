"""Reading the retrieval files line by line, so every problem names its file, line and field (a
core.data.DataError) and a bad row is left out while the rest is read: the corpus and queries JSONL
({"_id", "title", "text"} / {"_id", "text"}), the relevance-label TSV (query-id, corpus-id, score, with a
header) and pairs files (query / positive columns, through core.data's table reader). core.embed.data
builds the set from them. No torch here."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from core.data import DataError, read_table

LABEL_HEADER = ("query-id", "corpus-id", "score")
QUERY_COLUMNS = ("query", "anchor")
POSITIVE_COLUMNS = ("positive", "document", "passage")


def _lines(path: Path) -> list[str]:
    if not path.exists():
        raise DataError("file not found", file=path, hint="Check the path.")
    if path.is_dir():
        raise DataError("is a folder, not a data file", file=path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text (byte {e.start})", file=path, hint="Save the file as UTF-8.") from e
    if not text.strip():
        raise DataError("the file is empty", file=path)
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _text(value) -> str | None:
    return value.strip() if isinstance(value, str) else None


def _read_records(path: str | Path, what: str, problems: list, warnings: list) -> dict[str, tuple[int, dict]]:
    """A JSONL file of {"_id", "text", …} records: id -> (line, record). Bad lines become problems."""
    path = Path(path)
    out: dict[str, tuple[int, dict]] = {}
    seen_text: dict[str, int] = {}
    for line_no, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            problems.append(DataError(f"invalid JSON ({e})", file=path, line=line_no, kind="invalid JSON",
                                      hint="Each line must be one JSON object."))
            continue
        if not isinstance(rec, dict):
            problems.append(DataError(f"is a JSON {type(rec).__name__}, not an object", file=path, line=line_no,
                                      kind="not an object"))
            continue
        rid = rec.get("_id")
        rid = str(rid).strip() if isinstance(rid, (str, int)) and not isinstance(rid, bool) else ""
        if not rid:
            problems.append(DataError(f"the {what} has no id", file=path, line=line_no, field="_id", kind="no id",
                                      hint='Give every line an "_id".'))
            continue
        text, title = _text(rec.get("text")), _text(rec.get("title")) if rec.get("title") is not None else ""
        if title is None:
            problems.append(DataError("title must be text", file=path, line=line_no, field="title", kind="bad title"))
            continue
        if not text and not (what == "document" and title):
            problems.append(DataError(f"the {what} `{rid}` has no text", file=path, line=line_no, field="text",
                                      kind="empty text", hint="Give it a text, or remove the line."))
            continue
        if rid in out:
            problems.append(DataError(f"duplicate id `{rid}` (first on line {out[rid][0]}); this line is left out",
                                      file=path, line=line_no, field="_id", kind="duplicate id"))
            continue
        key = f"{title} {text}".strip().lower()
        if key in seen_text:
            warnings.append(DataError(f"the same text as line {seen_text[key]}", file=path, line=line_no,
                                      field="text", kind="duplicate text",
                                      hint="Identical documents compete for the same queries."))
        seen_text.setdefault(key, line_no)
        out[rid] = (line_no, {"title": title or "", "text": text or ""})
    return out


def read_corpus(path, problems: list, warnings: list) -> dict[str, dict]:
    return {k: rec for k, (_, rec) in _read_records(path, "document", problems, warnings).items()}


def read_queries(path, problems: list, warnings: list) -> dict[str, str]:
    return {k: rec["text"] for k, (_, rec) in _read_records(path, "query", problems, warnings).items()}


def read_labels(path, corpus: dict, queries: dict, problems: list, warnings: list) -> dict[str, dict[str, float]]:
    """A query-id / corpus-id / score TSV with a header; every id must be known, every score a number."""
    path = Path(path)
    lines = _lines(path)
    first = next(csv.reader(io.StringIO(lines[0]), delimiter="\t"), [])
    if [c.strip().lower().replace("_", "-") for c in first[:3]] != list(LABEL_HEADER):
        raise DataError(f"the first line must be the header {' <tab> '.join(LABEL_HEADER)}; it is {lines[0][:80]!r}",
                        file=path, line=1, hint="Labels are tab-separated: query-id, corpus-id, score.")
    out: dict[str, dict[str, float]] = {}
    where: dict[tuple[str, str], int] = {}
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        row = [c.strip() for c in line.split("\t")]
        if len(row) != 3:
            problems.append(DataError(f"has {len(row)} tab-separated fields, not 3", file=path, line=line_no,
                                      kind="wrong field count", hint="query-id <tab> corpus-id <tab> score"))
            continue
        qid, cid, score = row
        try:
            value = float(score)
        except ValueError:
            problems.append(DataError(f"score `{score}` is not a number", file=path, line=line_no, field="score",
                                      kind="bad score"))
            continue
        if qid not in queries:
            problems.append(DataError(f"unknown query id `{qid}` (not in the queries file)", file=path,
                                      line=line_no, field="query-id", kind="unknown query id"))
            continue
        if cid not in corpus:
            problems.append(DataError(f"unknown document id `{cid}` (not in the corpus)", file=path,
                                      line=line_no, field="corpus-id", kind="unknown corpus id"))
            continue
        if (qid, cid) in where:
            problems.append(DataError(f"`{qid}` → `{cid}` is labeled twice (first on line {where[qid, cid]})",
                                      file=path, line=line_no, kind="duplicate label"))
            continue
        where[qid, cid] = line_no
        out.setdefault(qid, {})[cid] = value
    for qid, docs in out.items():
        if not any(s > 0 for s in docs.values()):
            first_line = min(n for (q, _), n in where.items() if q == qid)
            warnings.append(DataError(f"query `{qid}` has no relevant document (every score is 0); it is left out",
                                      file=path, line=first_line, field="score", kind="no relevant document"))
    return out


def read_pairs(path, problems: list, warnings: list) -> list[tuple[str, str]]:
    """(query, positive) texts of a pairs file, in file order; rows with an empty side become problems."""
    path = Path(path)
    df, lines = read_table(path)
    columns = [str(c) for c in df.columns]
    q_col = next((c for c in QUERY_COLUMNS if c in columns), None)
    p_col = next((c for c in POSITIVE_COLUMNS if c in columns), None)
    if not q_col or not p_col:
        raise DataError(f"no query/positive columns; the file has {', '.join(columns)}", file=path,
                        hint="Name the columns `query` and `positive` (or use the three-file format).")
    out, seen = [], {}
    for (_, row), line in zip(df.iterrows(), lines):
        q, p = _text(row[q_col]), _text(row[p_col])
        if not q or not p:
            problems.append(DataError("empty text", file=path, line=line, field=q_col if not q else p_col,
                                      kind="empty text"))
            continue
        if (q, p) in seen:
            warnings.append(DataError(f"the same pair as line {seen[q, p]}", file=path, line=line, kind="duplicate pair"))
            continue
        seen[q, p] = line
        out.append((q, p))
    return out
