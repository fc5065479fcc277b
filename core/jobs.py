"""Start, watch and cancel worker processes. No torch here: the UI imports this module, and a worker
runs in its own process session so it outlives a closed browser or a stopped `studio serve`."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from core import runs
from core.monitor import CANCEL_FILE


def _spawn(args: list[str], log_path: Path) -> subprocess.Popen:
    env = dict(os.environ)
    # The worker must find the `core` package even when started from another folder.
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    log = open(log_path, "ab")
    try:
        return subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    finally:
        log.close()


def start_tuning(run_dir: str | Path) -> subprocess.Popen:
    """Launch `python -m core.train RUN_DIR` in the background."""
    run_dir = Path(run_dir)
    proc = _spawn(["-m", "core.train", str(run_dir)], run_dir / "worker.log")
    # Record the pid now, so a worker that dies while importing torch is still detected.
    runs.update_status(run_dir, pid=proc.pid, heartbeat_ts=time.time(), launched=runs.now_iso())
    return proc


def resume(run_dir: str | Path) -> subprocess.Popen:
    """Go on from a failed or cancelled run's last checkpoint to the same final step."""
    from core.train import last_checkpoint  # no torch at import time

    run_dir = Path(run_dir)
    status = runs.read_status(run_dir)
    if status.get("state") not in ("failed", "cancelled"):
        raise ValueError(f"run {run_dir.name} is {status.get('state')}; only failed or cancelled runs resume")
    ckpt = last_checkpoint(run_dir)
    if ckpt is None:
        raise ValueError(f"run {run_dir.name} has no checkpoint yet (one is saved every `eval_every` steps "
                         "and on cancel); start it again instead")
    (run_dir / CANCEL_FILE).unlink(missing_ok=True)
    runs.update_status(run_dir, state="queued", error=None, hint=None, finished=None)
    proc = _spawn(["-m", "core.train", str(run_dir), "--resume"], run_dir / "worker.log")
    runs.update_status(run_dir, pid=proc.pid, heartbeat_ts=time.time(), launched=runs.now_iso())
    return proc


def start_evaluation(out_dir: str | Path, cli_args: list[str]) -> subprocess.Popen:
    """Launch `studio evaluate … --out-dir OUT_DIR` in the background; it writes status.json there."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs.write_json(out_dir / "status.json", {"state": "queued", "created": runs.now_iso(), "done": 0})
    proc = _spawn(["-m", "core.cli", "evaluate", *cli_args, "--out-dir", str(out_dir)], out_dir / "worker.log")
    runs.update_status(out_dir, pid=proc.pid, heartbeat_ts=time.time())
    return proc


def cancel(run_dir: str | Path) -> None:
    """Ask a running worker to stop after its current step; it keeps the adapter trained so far."""
    (Path(run_dir) / CANCEL_FILE).touch()


def wait(run_dir: str | Path, on_update: Callable[[dict, list[dict]], None] | None = None,
         poll: float = 1.0, timeout: float | None = None) -> dict:
    """Block until the run reaches a final state; call on_update(status, new_metrics) as it goes."""
    start, seen = time.time(), 0
    while True:
        status = runs.read_status(run_dir)
        metrics = runs.read_metrics(run_dir)
        if on_update and (len(metrics) > seen or status.get("state") in runs.FINAL_STATES):
            on_update(status, metrics[seen:])
        seen = len(metrics)
        if status.get("state") in runs.FINAL_STATES:
            return status
        if timeout is not None and time.time() - start > timeout:
            raise TimeoutError(f"run {Path(run_dir).name} did not finish in {timeout:.0f} s")
        time.sleep(poll)


# A speed estimate is a real run of a few steps: measured, not guessed. Its first step is not counted
# (it includes one-off set-up), so at least three.
ESTIMATE_STEPS = 4


def start_estimate(workspace: str | Path, config: dict) -> Path:
    """Time a few real tuning steps of `config` in the background (workspace/estimates/<id>/)."""
    trial = {**config, "max_iterations": ESTIMATE_STEPS, "eval_every": 100_000, "name": "speed estimate"}
    folder = runs.create_run(workspace, trial, folder="estimates")
    start_tuning(folder)
    return folder


def estimate_from(folder: str | Path, config: dict) -> dict | None:
    """Seconds per step, the projected duration of `config` and peak memory, once the trial is done."""
    status = runs.read_status(folder)
    if status.get("state") not in runs.FINAL_STATES:
        return None
    if status["state"] != "succeeded":
        return {"error": status.get("error", "the trial run failed"), "hint": status.get("hint", "")}
    times = [m["time"] for m in runs.read_metrics(folder) if "loss" in m]
    deltas = sorted(b - a for a, b in zip(times, times[1:]))
    per_step = deltas[len(deltas) // 2] if deltas else None
    if per_step is None:
        return {"error": "the trial run logged no steps"}
    steps, every = int(config["max_iterations"]), int(config.get("eval_every") or 0)
    # An eval pass runs forward only (about a third of a training step) over up to 64 rows.
    eval_batches = -(-min(64, status.get("eval_rows") or 0) // max(1, int(config.get("batch_size", 8))))
    evals = steps // every if every and eval_batches else 0
    total = steps * per_step + evals * eval_batches * per_step / 3
    return {"seconds_per_step": round(per_step, 2), "steps": steps, "total_seconds": round(total),
            "peak_memory_mb": status.get("peak_memory_mb"), "device": status.get("device"),
            "precision": status.get("precision")}
