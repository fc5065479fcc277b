"""Measure a short tuning run on the bundled model and base vs tuned metrics on a sample eval set.

    .venv/bin/python benchmarks/tune_and_eval.py --task classification --steps 30
    .venv/bin/python benchmarks/tune_and_eval.py --run RUN_ID     # evaluate an existing run only

Prints one JSON object (device, tokens/s of tuning, seconds per step, base and tuned headline metrics)
and appends it to benchmarks/results.jsonl, so figures quoted elsewhere can be traced to a run."""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import jobs, runs  # noqa: E402
from core.config import EvalConfig  # noqa: E402
from core.requests import tune_config  # noqa: E402

SAMPLES = {"classification": ("classification_train.jsonl", "classification_eval.jsonl"),
           "summarization": ("summarization_train.jsonl", "summarization_eval.jsonl")}


def headline(task: str, m: dict) -> dict:
    keys = ("accuracy", "macro_f1", "micro_f1", "off_label_count") if task == "classification" else \
        ("rouge1_f1", "rouge2_f1", "rougeL_f1", "rougeLsum_f1")
    return {k: m[k] for k in keys} | {"rows": m["evaluation_status"]["num_successful_rows"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="classification", choices=list(SAMPLES))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--learning-rate", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--limit", type=int, default=None, help="eval rows (default: the whole sample eval set)")
    ap.add_argument("--run", help="skip tuning; evaluate this run")
    ap.add_argument("--workspace", default=str(ROOT / "workspace"))
    a = ap.parse_args()
    ws = runs.workspace_dir(a.workspace)
    train, ev = (str(ROOT / "assets" / f) for f in SAMPLES[a.task])

    if a.run:
        run_dir = runs.run_path(ws, a.run)
    else:
        cfg, _ = tune_config(ws, task=a.task, train_file=train, eval_file=ev, steps=a.steps, batch_size=a.batch_size,
                             learning_rate=a.learning_rate, name=f"bench-{a.task}-{a.steps}")
        run_dir = jobs.create_tune(ws, cfg)
        jobs.submit(run_dir)
        jobs.wait(run_dir, lambda st, new: print(f"step {st.get('step')}/{st.get('max_steps')}", file=sys.stderr))
    status = runs.read_status(run_dir)
    cfg = runs.read_json(run_dir / "config.json")
    train_lines = [m for m in runs.read_metrics(run_dir) if "loss" in m]
    steady = train_lines[2:] or train_lines  # the first steps include warm-up
    step_times = [b["time"] - a_["time"] for a_, b in zip(steady, steady[1:])]

    t0 = time.time()  # the evaluation as the studio runs it: a job on the queue
    eval_dir = jobs.create_evaluation(ws, EvalConfig(data=ev, task=a.task, run_id=run_dir.name, limit=a.limit))
    jobs.submit(eval_dir)
    jobs.wait(eval_dir)
    eval_s = time.time() - t0
    result = runs.read_json(eval_dir / "metrics.json")
    out = {
        "date": runs.now_iso(), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "device": status.get("device"), "precision": status.get("precision"), "run_id": run_dir.name,
        "task": a.task, "steps": status.get("step"), "batch_size": cfg["batch_size"],
        "learning_rate": cfg["learning_rate"], "state": status.get("state"),
        "tune_tokens_per_s_median": statistics.median(m["tokens_per_s"] for m in steady) if steady else None,
        "tune_seconds_per_step_median": statistics.median(step_times) if step_times else None,
        "first_loss": train_lines[0]["loss"] if train_lines else None,
        "last_loss": train_lines[-1]["loss"] if train_lines else None,
        "eval_seconds_base_and_tuned": round(eval_s, 1),
        "base": headline(a.task, result["base"]), "tuned": headline(a.task, result["tuned"]),
    }
    print(json.dumps(out, indent=2))
    with open(ROOT / "benchmarks" / "results.jsonl", "a") as f:
        f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
