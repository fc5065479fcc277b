"""The sweep the studio's tuning defaults come from: learning rate (and steps) on the shared Debian
classification data, judged on rows the reported figures never use.

    .venv/bin/python benchmarks/default_sweep.py --lrs 5e-4,1e-3,2e-3 --steps 80
    .venv/bin/python benchmarks/default_sweep.py --final     # the defaults as a user gets them
    .venv/bin/python benchmarks/default_sweep.py --final --summarization

Sweep: each setting tunes on the first 519 rows of ../shared/data/debian_classification_train.jsonl and
is scored (label scoring, base vs tuned) on a validation slice of that same training file, rows
2000-2199, which neither the tuning rows nor the shared eval file contain. --final: what a user gets
by picking those 519 rows and pressing Start (every setting the studio's default; eval loss on a slice
held out of them), scored on the first 300 rows of the shared eval file, with the wall time of tuning and of the base-vs-tuned evaluation. --final --summarization: the same
for one-line summaries (first 519 rows of the shared summarization training file, first 100 rows of its
eval file, ROUGE of greedy answers, and the tuned/base ROUGE-L ratio).
Every setting goes through the studio's own road (a tune job, then an evaluation job). Appends one JSON
line per run to benchmarks/results.jsonl."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import jobs, runs  # noqa: E402
from core.config import EvalConfig  # noqa: E402
from core.requests import tune_config  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
TRAIN, EVAL = SHARED / "debian_classification_train.jsonl", SHARED / "debian_classification_eval.jsonl"
SUMMARIES = SHARED / "debian_summarization_train.jsonl", SHARED / "debian_summarization_eval.jsonl"
# What each task's line reports of base and tuned.
SCORES = {"classification": ("accuracy", "macro_f1"), "summarization": ("rougeL_f1", "rouge1_f1", "rouge2_f1")}
VALIDATION = (2000, 2200)  # lines of TRAIN used to choose settings


def lines(path: Path, start: int, stop: int) -> str:
    return "".join(path.read_text().splitlines(keepends=True)[start:stop])


def one(ws: Path, train: Path, scored: Path, limit: int | None, name: str, eval_loss_file: Path | None,
        task: str = "classification", **settings) -> dict:
    cfg, why = tune_config(ws, task=task, train_file=str(train),
                           eval_file=str(eval_loss_file) if eval_loss_file else None, name=name, **settings)
    t0 = time.time()
    run_dir = jobs.create_tune(ws, cfg)
    jobs.submit(run_dir)
    status = jobs.wait(run_dir)
    tune_s = time.time() - t0
    if status.get("state") != "succeeded":
        raise SystemExit(f"{name}: {status.get('state')}: {status.get('error')}")
    t1 = time.time()
    eval_dir = jobs.create_evaluation(ws, EvalConfig(data=str(scored), task=task, run_id=run_dir.name,
                                                     limit=limit))
    jobs.submit(eval_dir)
    jobs.wait(eval_dir)
    eval_s = time.time() - t1
    m = runs.read_json(eval_dir / "metrics.json")
    out = {"date": runs.now_iso(), "benchmark": "default_sweep", "name": name, "task": task,
           "device": status.get("device"),
           "steps": cfg.max_iterations, "learning_rate": cfg.learning_rate, "batch_size": cfg.batch_size,
           "max_seq_length": cfg.max_seq_length, "lora_rank": cfg.lora.rank, "why_steps": why,
           "eval_mode": m.get("mode"), "scored_rows": m["tuned"]["evaluation_status"]["num_successful_rows"],
           "tune_seconds": round(tune_s, 1), "train_seconds": status.get("train_seconds"),
           "tokens_per_s": round(status["tokens_seen"] / status["train_seconds"], 1)
           if status.get("train_seconds") else None,
           "eval_seconds_base_and_tuned": round(eval_s, 1), "total_minutes": round((tune_s + eval_s) / 60, 2),
           "base": {k: m["base"][k] for k in SCORES[task]}, "tuned": {k: m["tuned"][k] for k in SCORES[task]}}
    if task == "summarization":
        out["rougeL_f1_ratio"] = round(m["tuned"]["rougeL_f1"] / max(m["base"]["rougeL_f1"], 1e-9), 2)
    print(json.dumps(out), flush=True)
    with open(ROOT / "benchmarks" / "results.jsonl", "a") as f:
        f.write(json.dumps(out) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lrs", default="5e-4,1e-3,2e-3", help="learning rates to try, comma-separated")
    ap.add_argument("--steps", type=int, default=None, help="steps of every sweep run (default: the studio's)")
    ap.add_argument("--rank", type=int, default=None, help="LoRA rank of every sweep run (default: the studio's)")
    ap.add_argument("--final", action="store_true", help="the studio's defaults, scored on 300 shared eval rows")
    ap.add_argument("--summarization", action="store_true",
                    help="with --final: the summarization defaults (519 training rows, 100 eval rows, ROUGE)")
    ap.add_argument("--workspace", default=str(ROOT / "workspace" / "sweep"))
    a = ap.parse_args()
    ws = runs.workspace_dir(a.workspace)
    data = ws / "data"
    data.mkdir(parents=True, exist_ok=True)
    train = data / "debian_train_519.jsonl"
    train.write_text(lines(TRAIN, 0, 519))
    if a.final and a.summarization:
        train = data / "debian_summaries_train_519.jsonl"
        train.write_text(lines(SUMMARIES[0], 0, 519))
        scored = data / "debian_summaries_eval_100.jsonl"
        scored.write_text(lines(SUMMARIES[1], 0, 100))
        one(ws, train, scored, None, "summarization defaults", None, task="summarization")
        return
    if a.final:
        scored = data / "debian_eval_300.jsonl"
        scored.write_text(lines(EVAL, 0, 300))
        # As a user who picks only the training file: eval loss (and the best checkpoint) on a slice held out
        # of it, never on the rows reported.
        one(ws, train, scored, None, "defaults", None)
        return
    validation = data / "debian_validation.jsonl"
    validation.write_text(lines(TRAIN, *VALIDATION))
    for lr in (float(x) for x in a.lrs.split(",")):
        one(ws, train, validation, None, f"sweep-lr{lr:g}-steps{a.steps or 'default'}"
            + (f"-rank{a.rank}" if a.rank else ""), validation, learning_rate=lr,
            **({"steps": a.steps} if a.steps else {}), **({"lora_rank": a.rank} if a.rank else {}))


if __name__ == "__main__":
    main()
