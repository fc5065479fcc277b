"""Start, watch and cancel worker processes. No torch here: the UI imports this module, and a worker
runs in its own process session so it outlives a closed browser or a stopped `studio serve`."""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
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
    """Launch `python -m core.train RUN_DIR [--resume]` in the background now (see submit() for the queue)."""
    run_dir = Path(run_dir)
    resume_flag = ["--resume"] if runs.read_json(run_dir / "status.json", {}).get("resume") else []
    proc = _spawn(["-m", "core.train", str(run_dir), *resume_flag], run_dir / "worker.log")
    # Record the pid now, so a worker that dies while importing torch is still detected.
    runs.update_status(run_dir, pid=proc.pid, heartbeat_ts=time.time(), launched=runs.now_iso())
    return proc


def resume(run_dir: str | Path) -> str:
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
    runs.update_status(run_dir, state="queued", error=None, hint=None, finished=None, resume=True, pid=None)
    return submit(run_dir)


def start_evaluation(out_dir: str | Path, cli_args: list[str]) -> subprocess.Popen:
    """Launch `studio evaluate … --out-dir OUT_DIR` in the background; it writes status.json there."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs.write_json(out_dir / "status.json", {"state": "queued", "created": runs.now_iso(), "done": 0})
    proc = _spawn(["-m", "core.cli", "evaluate", *cli_args, "--out-dir", str(out_dir)], out_dir / "worker.log")
    runs.update_status(out_dir, pid=proc.pid, heartbeat_ts=time.time())
    return proc


def cancel(run_dir: str | Path) -> None:
    """Ask a running worker to stop after its current step (it keeps the adapter trained so far and a
    checkpoint to resume from); a run still waiting in the queue is simply taken out of it."""
    run_dir = Path(run_dir)
    if run_dir.name in queue(run_dir.parent.parent):
        remove_from_queue(run_dir.parent.parent, run_dir.name)
        return
    (run_dir / CANCEL_FILE).touch()


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
    for heavy in ("adapter", "checkpoints"):  # a trial's weights are of no use; its timings are kept
        shutil.rmtree(Path(folder) / heavy, ignore_errors=True)
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


# The queue: one tuning job on the machine at a time (one device); later jobs wait in queue.json order.
# Every decision happens under a file lock, so two launches at once never both start.
@contextmanager
def _queue_lock(workspace: Path):
    workspace.mkdir(parents=True, exist_ok=True)
    with open(workspace / ".queue.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def queue(workspace: str | Path) -> list[str]:
    """Run ids waiting to start, first to start first."""
    return runs.read_json(Path(workspace) / "queue.json", []) or []


def _active(workspace: Path) -> str | None:
    for r in runs.list_runs(workspace):  # read_status inside marks dead workers failed
        st = r["status"]
        if st.get("state") == "running" or (st.get("state") == "queued" and st.get("pid")
                                             and runs.pid_alive(st["pid"])):
            return r["run_id"]
    return None


def submit(run_dir: str | Path) -> str:
    """Start the run now if the machine is free, else put it at the end of the queue.
    Returns "started" or "queued"."""
    run_dir = Path(run_dir)
    workspace = run_dir.parent.parent
    with _queue_lock(workspace):
        if _active(workspace) is None and not queue(workspace):
            start_tuning(run_dir)
            return "started"
        runs.write_json(workspace / "queue.json", queue(workspace) + [run_dir.name])
        runs.update_status(run_dir, queued_since=runs.now_iso())
        return "queued"


def start_next(workspace: str | Path) -> str | None:
    """Start the first queued run if nothing runs; called when a worker ends and when runs are listed
    (which also recovers the queue after a worker was killed)."""
    workspace = Path(workspace)
    with _queue_lock(workspace):
        waiting = queue(workspace)
        if not waiting or _active(workspace) is not None:
            return None
        run_id, rest = waiting[0], waiting[1:]
        runs.write_json(workspace / "queue.json", rest)
        run_dir = runs.runs_dir(workspace) / run_id
        if not run_dir.is_dir() or runs.read_status(run_dir).get("state") != "queued":
            return None
        start_tuning(run_dir)
        return run_id


def move_in_queue(workspace: str | Path, run_id: str, position: int) -> list[str]:
    """Put a waiting run at `position` (0 = next to start)."""
    workspace = Path(workspace)
    with _queue_lock(workspace):
        waiting = queue(workspace)
        if run_id not in waiting:
            raise ValueError(f"run {run_id} is not waiting in the queue")
        waiting.remove(run_id)
        waiting.insert(max(0, min(position, len(waiting))), run_id)
        runs.write_json(workspace / "queue.json", waiting)
        return waiting


def remove_from_queue(workspace: str | Path, run_id: str) -> None:
    """Take a waiting run out of the queue; it ends as cancelled without having started."""
    workspace = Path(workspace)
    with _queue_lock(workspace):
        waiting = queue(workspace)
        if run_id not in waiting:
            raise ValueError(f"run {run_id} is not waiting in the queue")
        runs.write_json(workspace / "queue.json", [r for r in waiting if r != run_id])
        runs.update_status(runs.runs_dir(workspace) / run_id, state="cancelled", finished=runs.now_iso(),
                           error=None, hint="Removed from the queue before it started.")


def delete_run(run_dir: str | Path) -> None:
    """Delete a run folder, taking it out of the queue first if it is waiting there."""
    run_dir = Path(run_dir)
    if run_dir.name in queue(run_dir.parent.parent):
        remove_from_queue(run_dir.parent.parent, run_dir.name)
    runs.delete(run_dir)


def start_candidates(workspace: str | Path, prompts_file: str | Path, queue: str, a: dict, b: dict,
                     limit: int | None = None) -> Path:
    """Generate two candidates per prompt into a labeling queue in the background
    (`studio prefs generate`); progress and the outcome are in the returned folder's status.json."""
    from datetime import datetime

    out_dir = Path(workspace) / "jobs" / f"candidates-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid() % 1000}"
    out_dir.mkdir(parents=True, exist_ok=True)
    runs.write_json(out_dir / "status.json", {"state": "queued", "created": runs.now_iso(), "done": 0,
                                              "queue": queue, "kind": "candidates"})
    args = ["-m", "core.cli", "prefs", "generate", "--prompts", str(prompts_file), "--queue", queue,
            "--workspace", str(workspace), "--status-dir", str(out_dir),
            "--temperature-a", str(a.get("temperature", 0.0)), "--temperature-b", str(b.get("temperature", 0.9))]
    for side, spec in (("a", a), ("b", b)):
        if spec.get("run"):
            args += [f"--run-{side}", spec["run"]]
        elif spec.get("model"):
            args += [f"--model-{side}", spec["model"]]
    if limit:
        args += ["--limit", str(limit)]
    proc = _spawn(args, out_dir / "worker.log")
    runs.update_status(out_dir, pid=proc.pid, heartbeat_ts=time.time())
    return out_dir
