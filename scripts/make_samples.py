"""Build the sample datasets in assets/ from the shared Debian description sets.

A fixed-seed, class-stratified subset, small enough for a CPU tuning demo: classification keeps every
class represented in train and eval; summarization keeps inputs of moderate length."""
from __future__ import annotations

import json
import random
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT.parent / "shared" / "data"


def read(name):
    return [json.loads(x) for x in (SRC / name).read_text().splitlines() if x.strip()]


def write(name, rows):
    with open(ROOT / "assets" / name, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"input_text": r["input_text"], "output_text": r["output_text"],
                                "package": r["package"]}, ensure_ascii=False) + "\n")


def stratified(rows, n, rng, max_chars):
    by = defaultdict(list)
    for r in rows:
        if len(r["input_text"]) <= max_chars:
            by[r["output_text"]].append(r)
    for v in by.values():
        rng.shuffle(v)
    out, per = [], max(1, n // len(by))
    for v in by.values():  # an even share per class first, so rare classes are present
        out += v[:per]
    rest = [r for v in by.values() for r in v[per:]]
    rng.shuffle(rest)
    out += rest[: max(0, n - len(out))]
    rng.shuffle(out)
    return out[:n]


def main():
    if not SRC.exists():
        sys.exit(f"{SRC} not found")
    rng = random.Random(0)
    write("classification_train.jsonl", stratified(read("debian_classification_train.jsonl"), 400, rng, 600))
    write("classification_eval.jsonl", stratified(read("debian_classification_eval.jsonl"), 102, rng, 600))
    s_train = [r for r in read("debian_summarization_train.jsonl") if len(r["input_text"]) <= 700]
    s_eval = [r for r in read("debian_summarization_eval.jsonl") if len(r["input_text"]) <= 700]
    rng.shuffle(s_train)
    rng.shuffle(s_eval)
    write("summarization_train.jsonl", s_train[:400])
    write("summarization_eval.jsonl", s_eval[:100])


if __name__ == "__main__":
    main()
