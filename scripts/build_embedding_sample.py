"""Build the embedding sample set in assets/embeddings/ from the shared Debian description sets.

The reference workflow's three files: a corpus (`{"_id", "title", "text"}` JSONL), queries (`{"_id",
"text"}` JSONL) and relevance labels (TSV `query-id  corpus-id  score`, with a header), train and test.
A query is a package's one-line synopsis, its relevant document the package's long description.

Split by package: training pairs come from debian_summarization_train.jsonl and test queries from
debian_summarization_eval.jsonl, which the shared data already splits by a hash of the source package
name. On top of that, a test row is dropped when its synopsis, its description, or the first 100
characters of its description also occur on the training side (different source packages can share a
text, e.g. versioned sources), and a synopsis that two packages share is never a query (it would have two
right answers). The corpus holds the training documents, the test documents and DISTRACTORS more
unseen documents without a query, so test queries are ranked against documents the model never saw as
well as those it trained on.

    .venv/bin/python scripts/build_embedding_sample.py      # rewrites assets/embeddings/
"""
from __future__ import annotations

import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT.parent / "shared" / "data"
OUT = ROOT / "assets" / "embeddings"
TRAIN_PAIRS, TEST_QUERIES, DISTRACTORS = 3000, 500, 1000
SEED = 0


def read(name: str) -> list[dict]:
    return [json.loads(x) for x in (SRC / name).read_text(encoding="utf-8").splitlines() if x.strip()]


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def clean(rows: list[dict]) -> list[dict]:
    """Rows with a package name, a synopsis and a description; a synopsis or a description that two
    packages of this side share is left out (a query with two right answers, or two identical documents)."""
    rows = [r for r in rows if r.get("package") and str(r.get("output_text", "")).strip()
            and str(r.get("input_text", "")).strip()]
    synopses = Counter(norm(r["output_text"]) for r in rows)
    docs = Counter(norm(r["input_text"]) for r in rows)
    return [r for r in rows if synopses[norm(r["output_text"])] == 1 and docs[norm(r["input_text"])] == 1]


def main() -> None:
    if not SRC.exists():
        sys.exit(f"{SRC} not found")
    train_all = read("debian_summarization_train.jsonl")
    eval_all = read("debian_summarization_eval.jsonl")
    seen_packages = {r["package"] for r in train_all}
    seen_texts = {norm(r["output_text"]) for r in train_all} | {norm(r["input_text"]) for r in train_all}
    seen_heads = {norm(r["input_text"])[:100] for r in train_all}
    unseen = [r for r in clean(eval_all) if r["package"] not in seen_packages
              and norm(r["output_text"]) not in seen_texts and norm(r["input_text"]) not in seen_texts
              and norm(r["input_text"])[:100] not in seen_heads]
    train = clean(train_all)
    rng = random.Random(SEED)
    rng.shuffle(train)
    rng.shuffle(unseen)
    train, test, distract = train[:TRAIN_PAIRS], unseen[:TEST_QUERIES], unseen[TEST_QUERIES:TEST_QUERIES + DISTRACTORS]
    assert len(train) == TRAIN_PAIRS and len(test) == TEST_QUERIES and len(distract) == DISTRACTORS
    assert not {r["package"] for r in train} & {r["package"] for r in test + distract}

    OUT.mkdir(parents=True, exist_ok=True)
    docs = sorted(train + test + distract, key=lambda r: r["package"])
    with open(OUT / "corpus.jsonl", "w", encoding="utf-8") as f:  # the package name is the document id
        f.writelines(json.dumps({"_id": r["package"], "title": "", "text": r["input_text"].strip()},
                               ensure_ascii=False) + "\n" for r in docs)
    with open(OUT / "queries.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"_id": f"q-{r['package']}", "text": r["output_text"].strip()}, ensure_ascii=False)
                    + "\n" for r in sorted(train + test, key=lambda r: r["package"]))
    for name, rows in (("train.tsv", train), ("test.tsv", test)):
        with open(OUT / name, "w", encoding="utf-8") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            f.writelines(f"q-{r['package']}\t{r['package']}\t1\n" for r in sorted(rows, key=lambda r: r["package"]))
    sizes = {p.name: p.stat().st_size for p in sorted(OUT.iterdir()) if p.suffix in (".jsonl", ".tsv")}
    print(f"{len(train)} training pairs, {len(test)} test queries, {len(docs)} documents; "
          + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items()))


if __name__ == "__main__":
    main()
