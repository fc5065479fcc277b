"""Preference pairs and their labels, in SQLite (WAL mode): every label is committed the moment it is
submitted, many labelers write at once, and (item, labeler) is unique, so a label is never lost or
stored twice. Agreement: Cohen's kappa per labeler pair (scikit-learn), Fleiss' kappa overall
(computed here: scikit-learn has none), raw agreement. Export in the reference format
(input_text, candidate_0, candidate_1, choice) or the DPO format (prompt, chosen, rejected)."""
from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter, defaultdict
from contextlib import closing
from itertools import combinations
from pathlib import Path

from core.data import load_dataset
from core.names import check_name
from core.runs import now_iso

CHOICES = ("a", "b", "tie", "both_bad")
SCHEMA = """
CREATE TABLE IF NOT EXISTS queues (name TEXT PRIMARY KEY, labels_per_item INTEGER NOT NULL DEFAULT 1,
                                   created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, queue TEXT NOT NULL REFERENCES queues(name),
                                  prompt TEXT NOT NULL, answer_a TEXT NOT NULL, answer_b TEXT NOT NULL,
                                  source_a TEXT, source_b TEXT, meta TEXT, adjudicated TEXT,
                                  adjudicated_by TEXT, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS labels (id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL REFERENCES items(id),
                                   labeler TEXT NOT NULL, choice TEXT NOT NULL, comment TEXT,
                                   created TEXT NOT NULL, UNIQUE (item_id, labeler));
CREATE INDEX IF NOT EXISTS items_queue ON items(queue);
CREATE INDEX IF NOT EXISTS labels_labeler ON labels(labeler);
"""


def db_path(workspace: str | Path) -> Path:
    return Path(workspace) / "preferences.db"


def connect(workspace: str | Path) -> sqlite3.Connection:
    """A connection of its own (one per thread or process); WAL lets readers and one writer overlap,
    and busy_timeout makes concurrent writers wait their turn instead of failing."""
    path = db_path(workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30, isolation_level=None)
    con.row_factory = sqlite3.Row
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA busy_timeout=30000")
    con.execute("PRAGMA foreign_keys=ON")
    con.executescript(SCHEMA)
    return con


def check_queue_name(name: str) -> str:
    return check_name(name, "queue name")


def create_queue(workspace, name: str, labels_per_item: int = 1) -> None:
    if labels_per_item < 1:
        raise ValueError("labels_per_item must be at least 1")
    with closing(connect(workspace)) as con:
        con.execute("INSERT INTO queues(name, labels_per_item, created) VALUES (?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET labels_per_item = excluded.labels_per_item",
                    (check_queue_name(name), labels_per_item, now_iso()))


def list_queues(workspace) -> list[dict]:
    with closing(connect(workspace)) as con:
        rows = con.execute("SELECT q.name, q.labels_per_item, COUNT(i.id) AS items FROM queues q "
                           "LEFT JOIN items i ON i.queue = q.name GROUP BY q.name ORDER BY q.created").fetchall()
    return [dict(r) for r in rows]


def add_pairs(workspace, queue: str, pairs: list[dict]) -> list[int]:
    """Add items: each {prompt, answer_a, answer_b, source_a?, source_b?, meta?}. Creates the queue."""
    check_queue_name(queue)
    with closing(connect(workspace)) as con:
        con.execute("INSERT OR IGNORE INTO queues(name, labels_per_item, created) VALUES (?, 1, ?)", (queue, now_iso()))
        ids = []
        con.execute("BEGIN IMMEDIATE")
        for p in pairs:
            cur = con.execute("INSERT INTO items(queue, prompt, answer_a, answer_b, source_a, source_b, meta, created) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              (queue, p["prompt"], p["answer_a"], p["answer_b"], p.get("source_a"),
                               p.get("source_b"), json.dumps(p.get("meta") or {}), now_iso()))
            ids.append(cur.lastrowid)
        con.execute("COMMIT")
    return ids


def import_file(workspace, path: str | Path, queue: str) -> int:
    """Import preference pairs (either format) into a labeling queue. A file's own choice is kept as the
    label of `imported`; a pair without a choice (no column, or an empty cell) waits for its labels."""
    data = load_dataset(path, format="preference")
    pairs = [{"prompt": e["prompt"], "answer_a": e["chosen"] if e["chosen"] is not None else e["answer_a"],
              "answer_b": e["rejected"] if e["chosen"] is not None else e["answer_b"],
              "meta": {"line": e["line"], "file": Path(path).name}} for e in data.examples]
    ids = add_pairs(workspace, queue, pairs)  # in file order
    chosen = [i for i, e in zip(ids, data.examples) if e["chosen"] is not None]
    with closing(connect(workspace)) as con:
        con.executemany("INSERT OR IGNORE INTO labels(item_id, labeler, choice, created) VALUES (?, 'imported', 'a', ?)",
                        [(i, now_iso()) for i in chosen])
    return len(data.examples)


def flipped(item_id: int, labeler: str) -> bool:
    """Whether this labeler sees the item's answers swapped: blind A/B order, stable across reloads."""
    return hashlib.sha1(f"{item_id}:{labeler}".encode()).digest()[0] % 2 == 1


def next_item(workspace, queue: str, labeler: str, skip: set[int] | None = None) -> dict | None:
    """The next item this labeler has not labelled that still needs labels, shown blind: `first` and
    `second` are the two answers in this labeler's order; sources are not included."""
    skip = skip or set()
    with closing(connect(workspace)) as con:
        need = con.execute("SELECT labels_per_item FROM queues WHERE name = ?", (queue,)).fetchone()
        if need is None:
            return None
        rows = con.execute(
            "SELECT i.id, i.prompt, i.answer_a, i.answer_b FROM items i WHERE i.queue = ? "
            "AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.item_id = i.id AND l.labeler = ?) "
            "AND (SELECT COUNT(*) FROM labels l WHERE l.item_id = i.id AND l.labeler != 'imported') < ? "
            "ORDER BY i.id", (queue, labeler, need["labels_per_item"])).fetchall()
    for r in rows:
        if r["id"] not in skip:
            swap = flipped(r["id"], labeler)
            first, second = (r["answer_b"], r["answer_a"]) if swap else (r["answer_a"], r["answer_b"])
            return {"id": r["id"], "prompt": r["prompt"], "first": first, "second": second}
    return None


def get_item(workspace, item_id: int) -> dict | None:
    """One item as stored (answers in their stored order, sources, adjudication), for review."""
    with closing(connect(workspace)) as con:
        row = con.execute("SELECT id, queue, prompt, answer_a, answer_b, source_a, source_b, adjudicated, "
                          "adjudicated_by FROM items WHERE id = ?", (item_id,)).fetchone()
    return dict(row) if row else None


def submit(workspace, item_id: int, labeler: str, shown: str, comment: str = "") -> None:
    """Record a label. `shown` is what the labeler picked on screen: first, second, tie or both_bad."""
    labeler = labeler.strip()
    if not labeler:
        raise ValueError("a label needs the labeler's name")
    mapping = {"tie": "tie", "both_bad": "both_bad"}
    if shown in ("first", "second"):
        pick_first = shown == "first"
        mapping[shown] = "b" if (pick_first == flipped(item_id, labeler)) else "a"
    if shown not in mapping:
        raise ValueError(f"choice must be first, second, tie or both_bad, got {shown!r}")
    with closing(connect(workspace)) as con:
        con.execute("INSERT INTO labels(item_id, labeler, choice, comment, created) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(item_id, labeler) DO UPDATE SET choice = excluded.choice, "
                    "comment = excluded.comment, created = excluded.created",
                    (item_id, labeler, mapping[shown], comment or None, now_iso()))


def undo_last(workspace, queue: str, labeler: str) -> int | None:
    """Remove this labeler's most recent label in the queue; returns its item id."""
    with closing(connect(workspace)) as con:
        row = con.execute("SELECT l.id, l.item_id FROM labels l JOIN items i ON i.id = l.item_id "
                          "WHERE i.queue = ? AND l.labeler = ? ORDER BY l.created DESC, l.id DESC LIMIT 1",
                          (queue, labeler)).fetchone()
        if row is None:
            return None
        con.execute("DELETE FROM labels WHERE id = ?", (row["id"],))
        return row["item_id"]


def progress(workspace, queue: str, labeler: str | None = None) -> dict:
    with closing(connect(workspace)) as con:
        need = (con.execute("SELECT labels_per_item FROM queues WHERE name = ?", (queue,)).fetchone() or [1])[0]
        total = con.execute("SELECT COUNT(*) FROM items WHERE queue = ?", (queue,)).fetchone()[0]
        counts = con.execute("SELECT i.id, COUNT(l.id) FROM items i LEFT JOIN labels l ON l.item_id = i.id "
                             "AND l.labeler != 'imported' WHERE i.queue = ? GROUP BY i.id", (queue,)).fetchall()
        mine = con.execute("SELECT COUNT(*) FROM labels l JOIN items i ON i.id = l.item_id "
                           "WHERE i.queue = ? AND l.labeler = ?", (queue, labeler or "")).fetchone()[0]
    complete = sum(1 for _, n in counts if n >= need)
    return {"items": total, "complete": complete, "remaining": total - complete, "labels_per_item": need,
            "mine": mine}


def labels(workspace, queue: str) -> list[dict]:
    with closing(connect(workspace)) as con:
        rows = con.execute("SELECT l.item_id, l.labeler, l.choice, l.comment, l.created FROM labels l "
                           "JOIN items i ON i.id = l.item_id WHERE i.queue = ? ORDER BY l.id", (queue,)).fetchall()
    return [dict(r) for r in rows]


def fleiss_kappa(table: list[list[int]]) -> float:
    """Fleiss' kappa for items × categories counts, every item rated by the same number of raters."""
    n_items = len(table)
    if n_items == 0:
        return float("nan")
    raters = sum(table[0])
    if raters < 2 or any(sum(row) != raters for row in table):
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings for every item")
    p_j = [sum(row[j] for row in table) / (n_items * raters) for j in range(len(table[0]))]
    p_i = [(sum(c * c for c in row) - raters) / (raters * (raters - 1)) for row in table]
    p_bar, p_e = sum(p_i) / n_items, sum(p * p for p in p_j)
    # Every rating in one category: agreement beyond chance is undefined (0/0), not perfect.
    return float("nan") if p_e == 1 else (p_bar - p_e) / (1 - p_e)


def agreement(workspace, queue: str) -> dict:
    """Counts per choice and labeler, Cohen's kappa per labeler pair, Fleiss' kappa, raw agreement, and
    the items the labelers disagree on."""
    from sklearn.metrics import cohen_kappa_score

    rows = [r for r in labels(workspace, queue) if r["labeler"] != "imported"]
    by_item: dict[int, dict[str, str]] = defaultdict(dict)
    for r in rows:
        by_item[r["item_id"]][r["labeler"]] = r["choice"]
    labelers = sorted({r["labeler"] for r in rows})
    pairs = {}
    for a, b in combinations(labelers, 2):
        common = [i for i, d in by_item.items() if a in d and b in d]
        if len(common) >= 2:
            x, y = [by_item[i][a] for i in common], [by_item[i][b] for i in common]
            # With one choice used by both, chance agreement is total and kappa is 0/0: undefined, not 1.
            kappa = float(cohen_kappa_score(x, y, labels=list(CHOICES))) if len(set(x) | set(y)) > 1 else None
            pairs[f"{a} / {b}"] = {"items": len(common), "cohen_kappa": kappa,
                                   "raw_agreement": sum(p == q for p, q in zip(x, y)) / len(common)}
    multi = {i: d for i, d in by_item.items() if len(d) >= 2}
    sizes = Counter(len(d) for d in multi.values())
    fleiss = None
    if sizes:
        k = sizes.most_common(1)[0][0]
        table = [[list(d.values()).count(c) for c in CHOICES] for d in multi.values() if len(d) == k]
        value = fleiss_kappa(table)
        fleiss = {"raters_per_item": k, "items": len(table), "kappa": None if value != value else value}
    agree = [len(set(d.values())) == 1 for d in multi.values()]
    return {"labels": len(rows), "per_choice": dict(Counter(r["choice"] for r in rows)),
            "per_labeler": {lab: dict(Counter(r["choice"] for r in rows if r["labeler"] == lab)) for lab in labelers},
            "cohen": pairs, "fleiss": fleiss,
            "raw_agreement": sum(agree) / len(agree) if agree else None,
            "disagreements": [{"item_id": i, "labels": d} for i, d in multi.items() if len(set(d.values())) > 1]}


def adjudicate(workspace, item_id: int, choice: str, by: str) -> None:
    if choice not in CHOICES:
        raise ValueError(f"choice must be one of {', '.join(CHOICES)}")
    with closing(connect(workspace)) as con:
        con.execute("UPDATE items SET adjudicated = ?, adjudicated_by = ? WHERE id = ?", (choice, by, item_id))


def final_pairs(workspace, queue: str) -> list[dict]:
    """Curated pairs for training: the adjudicated choice, else the majority of labels once the item has
    the K labels its queue asks for (an imported file's own choice counts as complete); ties, both-bad
    and items without a clear majority are left out."""
    with closing(connect(workspace)) as con:
        items = [dict(r) for r in con.execute("SELECT * FROM items WHERE queue = ? ORDER BY id", (queue,))]
        need = (con.execute("SELECT labels_per_item FROM queues WHERE name = ?", (queue,)).fetchone() or [1])[0]
    votes, imported = defaultdict(list), set()
    for r in labels(workspace, queue):
        votes[r["item_id"]].append(r["choice"])
        if r["labeler"] == "imported":
            imported.add(r["item_id"])
    out = []
    for it in items:
        choice = it["adjudicated"]
        complete = it["id"] in imported or len(votes[it["id"]]) >= need
        if choice is None and votes[it["id"]] and complete:
            (top, n), *rest = Counter(votes[it["id"]]).most_common() + [(None, 0)]
            choice = top if n > rest[0][1] else None
        if choice in ("a", "b"):
            chosen, rejected = (it["answer_a"], it["answer_b"]) if choice == "a" else (it["answer_b"], it["answer_a"])
            out.append({"item_id": it["id"], "prompt": it["prompt"], "chosen": chosen, "rejected": rejected,
                        "candidate_0": it["answer_a"], "candidate_1": it["answer_b"], "choice": 0 if choice == "a" else 1})
    return out


def export(workspace, queue: str, fmt: str = "vertex") -> list[dict]:
    """Rows in the reference format (`vertex`: input_text, candidate_0, candidate_1, choice) or `dpo`."""
    pairs = final_pairs(workspace, queue)
    if fmt == "vertex":
        return [{"input_text": p["prompt"], "candidate_0": p["candidate_0"], "candidate_1": p["candidate_1"],
                 "choice": p["choice"]} for p in pairs]
    if fmt == "dpo":
        return [{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs]
    raise ValueError("format must be vertex or dpo")
