"""A short tuning job run through the studio's queue on this machine, then through a Ray cluster (a local
head this script starts with two CPUs and stops): the time from submission to `succeeded` for both, so
what Ray Jobs adds to a job is measured. Appends one line to benchmarks/results.jsonl.

    .venv/bin/python benchmarks/ray_jobs.py [--steps 4]

Needs the ray extra (`pip install -e .[ray]`, also in the dev extra)."""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import executor, jobs, runs  # noqa: E402
from core.config import BUNDLED_MODEL, TuneConfig  # noqa: E402
from core.data import load_dataset  # noqa: E402

TRAIN = ROOT / "assets" / "classification_train.jsonl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_head() -> tuple[subprocess.Popen, str]:
    from ray.job_submission import JobSubmissionClient

    dashboard = free_port()
    head = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--num-cpus", "2",
                             "--num-gpus", "0", "--object-store-memory", "100000000", "--include-dashboard", "true",
                             "--disable-usage-stats", "--dashboard-host", "127.0.0.1", "--port", str(free_port()),
                             "--dashboard-port", str(dashboard), "--temp-dir", f"/tmp/ray-{os.getpid()}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    for _ in range(120):
        try:
            JobSubmissionClient(address).list_jobs()
            return head, address
        except Exception:
            time.sleep(1)
    raise SystemExit("the Ray head did not start")


def timed_run(ws: Path, steps: int) -> dict:
    data = load_dataset(str(TRAIN))
    cfg = TuneConfig.sft(task="classification", train_file=str(TRAIN), rows=len(data.examples), labels=data.labels,
                         steps=steps, batch_size=4, max_seq_length=256, eval_every=100_000, device="cpu",
                         eval_samples=0)
    run_dir = jobs.create_tune(ws, cfg)
    t0 = time.time()
    jobs.submit(run_dir)
    status = jobs.wait(run_dir, poll=0.5)
    if status["state"] != "succeeded":
        raise SystemExit(f"the run failed: {status.get('error')}\n{runs.log_tail(run_dir, 30)}")
    return {"seconds": round(time.time() - t0, 1), "train_seconds": status.get("train_seconds"),
            "executor": status.get("executor") or "local"}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=4)
    a = p.parse_args()
    ws = ROOT / ".cache" / "benchmark-ray"  # the bundled model is converted there once
    ws.mkdir(parents=True, exist_ok=True)
    executor.write_setting(ws, {"kind": "local"})
    timed_run(ws, 1)  # converts the bundled model once, outside the timings
    local = timed_run(ws, a.steps)
    t0 = time.time()
    head, address = start_head()
    head_seconds = round(time.time() - t0, 1)
    try:
        executor.write_setting(ws, executor.ray_setting(address, slots=1, gpus_per_job=0, cpus_per_job=2))
        on_ray = timed_run(ws, a.steps)
    finally:
        executor.write_setting(ws, {"kind": "local"})
        os.killpg(head.pid, signal.SIGTERM)
        time.sleep(5)
        try:
            os.killpg(head.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    record = {"date": runs.now_iso(), "benchmark": "ray_jobs", "machine": platform.machine(), "cores": os.cpu_count(),
              "model": BUNDLED_MODEL, "steps": a.steps, "local": local, "ray": on_ray,
              "ray_head_start_seconds": head_seconds}
    print(json.dumps(record))
    with open(ROOT / "benchmarks" / "results.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
