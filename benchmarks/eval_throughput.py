"""Evaluation throughput: batched generation against one row at a time, free and constrained.

    .venv/bin/python benchmarks/eval_throughput.py [--rows 32] [--run RUN_ID]

Runs the real evaluation path (core.evaluate.run_evaluation) on the bundled model and the sample
classification eval set, and appends rows/s per setting to benchmarks/results.jsonl."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import runs  # noqa: E402
from core.config import EvalConfig  # noqa: E402
from core.evaluate import run_evaluation  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--workspace", default=str(ROOT / "workspace"))
    a = ap.parse_args()
    ws = runs.workspace_dir(a.workspace)
    data = ROOT / "assets" / "classification_eval.jsonl"
    out = {"date": runs.now_iso(), "benchmark": "eval_throughput", "rows": a.rows, "task": "classification"}
    with tempfile.TemporaryDirectory() as tmp:
        for name, batch, constrained in (("one_row_at_a_time", 1, False), ("batched_16", 16, False),
                                         ("batched_16_constrained", 16, True)):
            run_evaluation(ws, EvalConfig(data=str(data), task="classification", limit=a.rows, batch_size=batch,
                                          constrained=constrained), Path(tmp) / name)
            m = runs.read_json(Path(tmp) / name / "metrics.json")
            out[name] = {"rows_per_second": m["rows_per_second"], "accuracy": round(m["base"]["accuracy"], 4),
                         "off_label": m["base"]["off_label_count"]}
            print(name, out[name], file=sys.stderr)
    out["batched_speedup"] = round(out["batched_16"]["rows_per_second"] / out["one_row_at_a_time"]["rows_per_second"], 2)
    print(json.dumps(out, indent=2))
    with open(ROOT / "benchmarks" / "results.jsonl", "a") as f:
        f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
