"""What the one compute queue buys on a CPU: a tuning run with an evaluation submitted beside it.

"queued":  both go through core.job_queue, so the evaluation waits until the run ends (the studio now).
"beside":  both workers are launched at once, as evaluations were before they joined the queue.
Alternated A B A B in one script on the bundled model and the sample classification set; records the
run's median seconds per step, the evaluation's answers per second, and the time until both are done.

    .venv/bin/python benchmarks/queue_isolation.py [--steps 6] [--rows 24] [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import job_queue, jobs, runs  # noqa: E402
from core.config import EvalConfig  # noqa: E402
from core.models import ensure_bundled_model  # noqa: E402
from core.names import FINAL_STATES  # noqa: E402
from core.requests import tune_config  # noqa: E402


def one_round(ws: Path, mode: str, steps: int, rows: int) -> dict:
    train, ev = (str(ROOT / "assets" / f) for f in ("classification_train.jsonl", "classification_eval.jsonl"))
    cfg, _ = tune_config(ws, task="classification", train_file=train, eval_file=ev, steps=steps, eval_every=1000,
                         eval_samples=0, name=f"bench-{mode}")
    run_dir = jobs.create_tune(ws, cfg)
    eval_dir = jobs.create_evaluation(ws, EvalConfig(data=ev, task="classification", limit=rows))
    t0 = time.time()
    if mode == "queued":
        jobs.submit(run_dir)
        jobs.submit(eval_dir)
    else:  # the old road: two workers at once on the same cores
        for d in (run_dir, eval_dir):
            proc = job_queue._spawn(d, "cpu")
            runs.update_status(d, pid=proc.pid, heartbeat_ts=time.time())
    while any(runs.read_status(d).get("state") not in FINAL_STATES for d in (run_dir, eval_dir)):
        time.sleep(0.5)
    makespan = time.time() - t0
    times = [m["time"] for m in runs.read_metrics(run_dir) if "loss" in m][1:]  # the first step includes set-up
    metrics = runs.read_json(eval_dir / "metrics.json", {}) or {}
    run_status, eval_status = runs.read_status(run_dir), runs.read_status(eval_dir)
    return {"mode": mode, "run_state": run_status.get("state"), "eval_state": eval_status.get("state"),
            "seconds_per_step_median": round(statistics.median(b - a for a, b in zip(times, times[1:])), 2),
            "eval_rows_per_second": metrics.get("rows_per_second"),
            "eval_started_after_run_finished": (eval_status.get("started") or "") >= (run_status.get("finished") or "~"),
            "both_done_s": round(makespan, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rows", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = runs.workspace_dir(tmp)
        ensure_bundled_model(ws)  # converted once before the clock starts
        for i in range(a.rounds):
            for mode in ("queued", "beside"):
                results.append(one_round(ws, mode, a.steps, a.rows))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    summary = {m: {k: statistics.median(r[k] for r in results if r["mode"] == m)
                   for k in ("seconds_per_step_median", "eval_rows_per_second", "both_done_s")}
               for m in ("queued", "beside")}
    out = {"date": runs.now_iso(), "benchmark": "queue_isolation", "steps": a.steps, "eval_rows": a.rows,
           "rounds": results, "median": summary}
    print(json.dumps(out, indent=2))
    with open(ROOT / "benchmarks" / "results.jsonl", "a") as f:
        f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
