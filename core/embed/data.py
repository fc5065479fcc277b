"""Retrieval data for embedding tuning, in the reference workflow's three files or as pairs:

  corpus   JSONL, one document a line: {"_id", "title", "text"} (title may be empty)
  queries  JSONL, one query a line: {"_id", "text"}
  labels   TSV with a header: query-id <tab> corpus-id <tab> score (score > 0: relevant); a train file and,
           optionally, a test file; with only one, its queries are split (by query, never a query in both)
  pairs    JSONL / CSV / Parquet with `query` and `positive` columns (or `anchor`/`positive`): each row is a
           query and a document relevant to it; ids are given by the texts

Every problem names its file, line and field (a core.data.DataError); a row with a problem is left out and
the rest is used, so a check lists every problem at once (check_report) and tuning refuses only a set with
too little left. No torch here: the pages import this module."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from core.data import DataError
from core.embed.files import read_corpus, read_labels, read_pairs, read_queries

MIN_TRAIN_PAIRS = 10
# The sample set that ships with the studio (scripts/build_embedding_sample.py; provenance in its README).
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "assets" / "embeddings"
SAMPLE_FILES = {"corpus": "corpus.jsonl", "queries": "queries.jsonl", "train": "train.tsv", "test": "test.tsv"}
# Steps: one pass over the training pairs (what the sentence-transformers training examples run), kept
# inside this range; on the sample set that is 94 steps, under four minutes on 2 CPU cores.
STEP_RANGE = (10, 1000)
UPLOADS = "embedding_data"  # uploaded files, inside a workspace


@dataclass
class EmbedSet:
    """A retrieval set: documents, queries and relevance labels split into train and test."""
    corpus: dict[str, dict]                     # id -> {"title", "text"}
    queries: dict[str, str]                     # id -> text
    train: dict[str, dict[str, float]]          # query id -> {corpus id: score}
    test: dict[str, dict[str, float]]
    format: str = "three_files"                 # or "pairs"
    files: dict[str, str] = field(default_factory=dict)
    problems: list[DataError] = field(default_factory=list)   # rows left out
    warnings: list[DataError] = field(default_factory=list)   # rows kept, but worth a look
    notes: list[str] = field(default_factory=list)

    def doc_text(self, cid: str) -> str:
        d = self.corpus[cid]
        return f"{d['title']} {d['text']}".strip() if d.get("title") else d["text"]

    def relevant(self, labels: dict[str, dict[str, float]]) -> dict[str, set[str]]:
        """Query id -> the ids of its relevant documents (score > 0); queries with none are left out."""
        out = {q: {c for c, s in docs.items() if s > 0} for q, docs in labels.items()}
        return {q: docs for q, docs in out.items() if docs}

    def pairs(self, labels: dict[str, dict[str, float]]) -> list[tuple[str, str]]:
        """(query text, document text) for every relevant label: what in-batch negatives train on."""
        return [(self.queries[q], self.doc_text(c)) for q, docs in sorted(self.relevant(labels).items())
                for c in sorted(docs)]

    def counts(self) -> dict[str, int]:
        return {"documents": len(self.corpus), "queries": len(self.queries),
                "train_queries": len(self.relevant(self.train)), "train_pairs": len(self.pairs(self.train)),
                "test_queries": len(self.relevant(self.test)),
                "test_labels": sum(len(d) for d in self.relevant(self.test).values())}


def _ids_for(pairs_by_file: list[list[tuple[str, str]]]) -> tuple[dict, dict, list[dict]]:
    """Ids from texts: one query per distinct query text, one document per distinct positive text."""
    queries, corpus, labels = {}, {}, []
    qid, cid = {}, {}
    for pairs in pairs_by_file:
        lab: dict[str, dict[str, float]] = {}
        for q, p in pairs:
            qi = qid.setdefault(q, f"q{len(qid) + 1}")
            ci = cid.setdefault(p, f"d{len(cid) + 1}")
            queries[qi], corpus[ci] = q, {"title": "", "text": p}
            lab.setdefault(qi, {})[ci] = 1.0
        labels.append(lab)
    return corpus, queries, labels


# ---------------------------------------------------------------- the split and the whole set

def split_labels(labels: dict[str, dict[str, float]], test_fraction: float = 0.2, seed: int = 0
                 ) -> tuple[dict, dict]:
    """Train and test labels, split by query (every label of a query goes to the same side), in an order
    fixed by a hash of the seed and the query id, so the same file always splits the same way."""
    order = sorted(labels, key=lambda q: hashlib.sha1(f"{seed}:{q}".encode()).hexdigest())
    n_test = min(len(order) - 1, max(1, round(len(order) * test_fraction))) if len(order) > 1 else 0
    test = set(order[:n_test])
    return ({q: d for q, d in labels.items() if q not in test}, {q: d for q, d in labels.items() if q in test})


def load_embed_set(*, corpus=None, queries=None, train=None, test=None, pairs=None, test_pairs=None,
                   test_fraction: float = 0.2, seed: int = 0) -> EmbedSet:
    """The set the files make (three-file or pairs format), every problem recorded; raises DataError only
    for a file that cannot be read at all, or a request that names no data."""
    problems: list[DataError] = []
    warnings: list[DataError] = []
    notes: list[str] = []
    if pairs:
        files = {"pairs": str(pairs), **({"test_pairs": str(test_pairs)} if test_pairs else {})}
        found = [read_pairs(pairs, problems, warnings)] + ([read_pairs(test_pairs, problems, warnings)] if test_pairs else [])
        docs, qs, labels = _ids_for(found)
        train_labels, test_labels = labels[0], labels[1] if test_pairs else None
        fmt = "pairs"
    else:
        if not (corpus and queries and train):
            raise DataError("name a corpus, a queries file and a label file (or a pairs file)",
                            hint="The three-file format: corpus.jsonl, queries.jsonl, train.tsv (and test.tsv).")
        files = {"corpus": str(corpus), "queries": str(queries), "train": str(train), **({"test": str(test)} if test else {})}
        docs = read_corpus(corpus, problems, warnings)
        qs = read_queries(queries, problems, warnings)
        train_labels = read_labels(train, docs, qs, problems, warnings)
        test_labels = read_labels(test, docs, qs, problems, warnings) if test else None
        fmt = "three_files"
    if test_labels is None:  # queries without a relevant document are left out before the split
        train_labels = {q: d for q, d in train_labels.items() if any(v > 0 for v in d.values())}
        train_labels, test_labels = split_labels(train_labels, test_fraction, seed)
        notes.append(f"No test labels given: {len(test_labels)} of {len(train_labels) + len(test_labels)} queries "
                     f"({test_fraction:.0%}) are held out for testing, split by query.")
    else:
        both = sorted(set(train_labels) & set(test_labels))
        if both:
            warnings.append(DataError(f"{len(both)} queries are in both the train and the test labels (e.g. "
                                      f"`{both[0]}`); their test scores flatter the tuned model",
                                      file=files.get("test") or files.get("test_pairs"), kind="query in both",
                                      hint="Keep every query on one side."))
    labeled = {q for lab in (train_labels, test_labels) for q in lab}
    unlabeled = [q for q in qs if q not in labeled]
    if unlabeled and fmt == "three_files":
        notes.append(f"{len(unlabeled)} queries have no label in any label file and are not used (e.g. `{unlabeled[0]}`).")
    return EmbedSet(corpus=docs, queries=qs, train=train_labels, test=test_labels, format=fmt, files=files,
                    problems=problems, warnings=warnings, notes=notes)


def save_upload(workspace: str | Path, name: str, data: bytes) -> Path:
    """An uploaded corpus, queries, labels or pairs file, stored under <workspace>/embedding_data/ with a
    sanitized name (core.inventory.safe_filename: never a path outside that folder), written atomically;
    an identical file is left alone, so caches keyed by its mtime stay valid."""
    from core.inventory import safe_filename, store_file

    return store_file(Path(workspace) / UPLOADS, safe_filename(name), data)


def page_path(path: str, workspace: str | Path) -> Path:
    """A file named on the page: read only inside the workspace or the studio's assets (as the SQL page
    reads files), so a browser can never make the server read any file it can; the CLI reads any path."""
    target = Path(path).expanduser().resolve()
    roots = [Path(workspace).resolve(), SAMPLE_DIR.parent.resolve()]
    if not any(target == r or r in target.parents for r in roots):
        raise DataError("is outside the workspace; the page reads files in the workspace (or uploads)", file=target,
                        hint=f"Copy it into {roots[0]} or upload it; `studio embed` on the command line reads any path.")
    return target


def sample_files() -> dict[str, str]:
    """The sample set's files, as load_embed_set's keyword arguments."""
    return {k: str(SAMPLE_DIR / v) for k, v in SAMPLE_FILES.items()}


def recommend_steps(pairs: int, batch_size: int) -> tuple[int, str]:
    """Default steps for `pairs` training pairs, and a sentence that says why."""
    raw = max(1, round(pairs / max(1, batch_size)))
    lo, hi = STEP_RANGE
    steps = min(hi, max(lo, raw))
    why = f"{pairs} training pairs at batch size {batch_size} make {raw} steps for one pass"
    return steps, why + (f"; kept to {steps} (range {lo}–{hi})." if steps != raw else ".")


def problem_row(e: DataError) -> dict:
    return {"file": Path(e.file).name if e.file else "", "line": e.line, "field": e.field or "",
            "problem": e.message, "hint": e.hint or "", "kind": e.kind or ""}


def check_report(data: EmbedSet) -> dict:
    """What the check shows: counts, every problem (rows left out) and warning with file/line/field, notes,
    and whether the set can tune: enough training pairs and at least one test query."""
    counts = data.counts()
    usable = counts["train_pairs"] >= MIN_TRAIN_PAIRS and counts["test_queries"] >= 1
    why = None
    if counts["train_pairs"] < MIN_TRAIN_PAIRS:
        why = f"only {counts['train_pairs']} training pairs; tuning needs at least {MIN_TRAIN_PAIRS}"
    elif counts["test_queries"] < 1:
        why = "no test query with a relevant document"
    return {"usable": usable, "why_not": why, "format": data.format, "files": data.files, "counts": counts,
            "problems": [problem_row(e) for e in data.problems], "warnings": [problem_row(e) for e in data.warnings],
            "notes": data.notes}
