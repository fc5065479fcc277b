"""One tuning run as one process and as two (torchrun, gloo on CPU), through the queue as a user would
start it: the bundled model on the classification sample, the same batches, the same steps. Prints and
appends to benchmarks/results.jsonl the median seconds a step (first step left out), steps/s, and the
losses of both, which should agree (the same math, split over processes).

    .venv/bin/python benchmarks/multiprocess_gloo.py [--steps 12] [--batch-size 8]

On a CPU two processes share the cores one process would use, so this measures that the launch works
and what it costs, not a speed-up; on a machine with several GPUs each process has a GPU of its own."""
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

from core import jobs, launch, runs  # noqa: E402
from core.config import BUNDLED_MODEL, TuneConfig  # noqa: E402
from core.data import load_dataset  # noqa: E402

TRAIN = ROOT / "assets" / "classification_train.jsonl"


def one_run(ws: Path, processes: int, steps: int, batch: int) -> dict:
    data = load_dataset(str(TRAIN))
    cfg = TuneConfig.sft(task="classification", train_file=str(TRAIN), rows=len(data.examples), labels=data.labels,
                         steps=steps, batch_size=batch, max_seq_length=256, eval_every=100_000, device="cpu",
                         processes=processes, eval_samples=0)
    run_dir = jobs.create_tune(ws, cfg)
    t0 = time.time()
    jobs.submit(run_dir)
    status = jobs.wait(run_dir, poll=1.0)
    wall = time.time() - t0
    if status["state"] != "succeeded":
        raise SystemExit(f"{processes}-process run failed: {status.get('error')}\n{runs.log_tail(run_dir, 30)}")
    lines = [m for m in runs.read_metrics(run_dir) if "loss" in m]
    times = [m["time"] for m in lines]
    per_step = statistics.median(b - a for a, b in zip(times, times[1:]))
    return {"processes": processes, "seconds_per_step": round(per_step, 2), "steps_per_s": round(1 / per_step, 3),
            "train_seconds": status.get("train_seconds"), "wall_seconds": round(wall, 1),
            "losses": [round(m["loss"], 4) for m in lines]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=8)
    a = p.parse_args()
    ws = ROOT / ".cache" / "benchmark-multiprocess"  # the bundled model is converted there once
    results = [one_run(ws, n, a.steps, a.batch_size) for n in (1, 2)]
    for r in results:
        print(json.dumps(r))
    record = {"date": runs.now_iso(), "benchmark": "multiprocess_gloo", "machine": platform.machine(),
              "cores": launch.cpu_cores(), "model": BUNDLED_MODEL, "data": TRAIN.name, "steps": a.steps,
              "batch_size": a.batch_size, "runs": results}
    with open(ROOT / "benchmarks" / "results.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
