"""The worker: `python -m core.worker JOB_DIR` runs one job folder, whatever its kind.

It reads job.json, dispatches on `kind`, keeps status.json alive (state, heartbeat, progress), records a
failure with its cause and a hint in one place, and when it ends starts the next queued job.

Started by the queue, the command first becomes a small supervisor that runs the same command as a child
and waits for it: a child killed with SIGKILL (or by the kernel for memory) is then recorded as failed at
once and the queue moves on. Under torchrun/accelerate (RANK set) the job runs in the process itself,
every rank trains, and only rank 0 writes the folder or starts the next job."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path

from core import job_queue, jobs, launch, runs
from core.candidates import generate_candidates
from core.config import CandidatesConfig, EvalConfig, TeacherPassConfig
from core.distill_teacher import run_teacher_pass
from core.evaluate import run_evaluation
from core.models import pick_device
from core.monitor import Worker, is_main_process, peak_memory_mb
from core.names import ADAPTER_DIR, CHECKPOINTS_DIR, FINAL_STATES, STATUS_FILE
from core.train import (
    run_tuning,  # these modules load torch only when a job runs, not on import
)

CHILD_ENV = launch.CHILD_ENV


class JobCancelled(Exception):
    """Raised from a job's progress callback when the user asked it to stop."""


def failure_hint(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".lower()
    if "out of memory" in text or isinstance(exc, MemoryError):
        return ("Out of memory: lower the batch size or the max sequence length, turn on gradient "
                "checkpointing, or choose a smaller LoRA rank or model.")
    if "no such file" in text or "not found" in text:
        return "A file or model could not be found; check the dataset path and the model name."
    hint = getattr(exc, "hint", None)  # DataError and friends carry their own
    return hint or "See the log lines below for details; fix the cause and start it again."


def _use_threads() -> None:
    """Use the CPU threads the queue gave this worker (all cores when run by hand)."""
    threads = os.environ.get(job_queue.THREADS_ENV)
    if threads:
        import torch  # the worker trains or generates anyway; torch is loaded for that

        torch.set_num_threads(int(threads))


def _progress(worker: Worker, job_dir: Path):
    """A progress(done, total) callback that records progress and honours a cancel request."""
    def progress(done: int, total: int) -> None:
        worker.status(state="running", phase="generating", done=done, total=total)
        if jobs.cancel_requested(job_dir):
            raise JobCancelled()
    return progress


def _dispatch(job_dir: Path, job: dict, worker: Worker):
    kind, config = job.get("kind"), job.get("config") or {}
    workspace = job_queue.workspace_of(job_dir)
    if kind in ("tune", "estimate"):
        resume = bool(runs.read_json(job_dir / STATUS_FILE, {}).get("resume"))
        return run_tuning(job_dir, resume=resume, worker=worker)
    if kind == "evaluate":
        result = run_evaluation(workspace, EvalConfig.from_dict(config), job_dir, progress=_progress(worker, job_dir))
        # what answering took in memory, shown beside the speed where models are compared (core.distill_compare)
        worker.status(peak_memory_mb=round(peak_memory_mb(pick_device(config.get("device") or "auto"))))
        return result
    if kind == "sql":
        from core.sql.jobs import run_sql_job  # DuckDB and the SQL engine load for this kind only

        return run_sql_job(job_dir, config, progress=_progress(worker, job_dir))
    if kind == "candidates":
        pairs = generate_candidates(workspace, CandidatesConfig.from_dict(config),
                                    progress=_progress(worker, job_dir))
        worker.status(pairs=pairs)
        return pairs
    if kind == "embed_tune":
        from core.embed.tune import run_embed_tuning  # sentence-transformers loads for this kind only

        return run_embed_tuning(job_dir, worker=worker)
    if kind == "export":
        from core.export.config import ExportConfig
        from core.export.job import run_export  # peft, gguf and the runtimes load for this kind only

        def phase(name: str, done: int | None = None, total: int | None = None) -> None:
            counts = {} if done is None else {"done": done, "total": total}  # a sub-phase keeps the count
            worker.status(state="running", phase=name, **counts)
            if jobs.cancel_requested(job_dir):
                raise JobCancelled()
        return run_export(workspace, ExportConfig.from_dict(config), job_dir, phase=phase)
    if kind in ("image_tune", "image_trial"):
        from core.images.tune import run_image_tuning  # diffusers loads for these kinds only

        return run_image_tuning(job_dir, worker=worker, trial=kind == "image_trial")
    if kind == "teacher_pass":
        counts = run_teacher_pass(workspace, TeacherPassConfig.from_dict(config), job_dir,
                                  progress=_progress(worker, job_dir))
        worker.status(rows_ok=counts["ok"], rows_failed=counts["failed"])
        return counts
    raise ValueError(f"unknown job kind {kind!r} in {job_dir / 'job.json'}")


def run_job(job_dir: str | Path):
    """Run the job in this process; returns what its kind returns (the trained model for tuning)."""
    job_dir = Path(job_dir).resolve()
    job = jobs.read_job(job_dir)
    worker = Worker(job_dir)
    worker.status(state="running", started=runs.now_iso(), pid=os.getpid(), phase="loading model",
                  error=None, hint=None, kind=job.get("kind"),
                  # rank 0 under torchrun: its parent is the launcher the supervisor started (see supervise)
                  launcher_pid=os.getppid() if "RANK" in os.environ else None,
                  processes=int(os.environ.get("WORLD_SIZE", "1")))
    heartbeat = threading.Thread(target=worker.beat, daemon=True)
    heartbeat.start()
    try:
        _use_threads()
        result = _dispatch(job_dir, job, worker)
        if runs.read_status(job_dir).get("state") not in FINAL_STATES:  # tuning records its own end
            worker.status(state="succeeded", phase="done", finished=runs.now_iso())
        return result
    except JobCancelled:
        worker.status(state="cancelled", phase="done", finished=runs.now_iso(), hint="Cancelled while running.")
    except BaseException as exc:  # record every failure, KeyboardInterrupt included, then re-raise
        traceback.print_exc()
        worker.status(state="failed", finished=runs.now_iso(), error=f"{type(exc).__name__}: {exc}",
                      hint=failure_hint(exc))
        raise
    finally:
        worker.stop.set()
        if job.get("kind") == "estimate" and worker.main:  # a trial's weights are of no use; its timings are
            for heavy in (ADAPTER_DIR, CHECKPOINTS_DIR):
                shutil.rmtree(job_dir / heavy, ignore_errors=True)


def supervise(job_dir: Path) -> int:
    """Run the job as a child process (torchrun around N of them when it asks for several processes,
    core.launch); whatever way it ends, record it and start the next job."""
    job = jobs.read_job(job_dir)
    processes = launch.processes_of(job)
    try:
        launch.check_processes(processes, job_queue.device_of(job.get("config") or {}))
    except ValueError as exc:
        runs.update_status(job_dir, state="failed", finished=runs.now_iso(), error=str(exc),
                           hint="Lower the number of processes, or run it on a machine with more GPUs.")
        job_queue.start_next(job_queue.workspace_of(job_dir))
        return 1
    env = launch.process_env({**os.environ, CHILD_ENV: "1"}, processes)
    child = subprocess.Popen(launch.worker_command(job_dir, processes), env=env)
    try:
        code = child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        code = child.wait()
    mine = (child.pid, os.getpid())  # the status pid while this launch owns the folder
    status = runs.read_json(job_dir / STATUS_FILE, {}) or {}
    if status.get("launcher_pid") == child.pid and isinstance(status.get("pid"), int):
        # several processes: rank 0 under this launch's torchrun wrote the pid
        mine += (status.get("pid"),)
    if code < 0:
        name = signal.Signals(-code).name
        job_queue.reap_job(job_dir, pids=mine, cause=f"The worker stopped unexpectedly (killed by {name}"
                                                     f"{', likely out of memory' if name == 'SIGKILL' else ''}).")
    else:
        job_queue.reap_job(job_dir, pids=mine, cause=f"The worker stopped unexpectedly (exit code {code}) "
                                                     "before recording how it ended.")
    job_queue.start_next(job_queue.workspace_of(job_dir))
    return code if code >= 0 else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m core.worker JOB_DIR", file=sys.stderr)
        return 2
    job_dir = Path(argv[0]).resolve()
    if not os.environ.get(CHILD_ENV) and "RANK" not in os.environ:
        return supervise(job_dir)
    try:
        run_job(job_dir)
    except Exception:
        return 1
    finally:  # whatever happened, the next queued job may go
        if is_main_process() and "RANK" in os.environ:
            job_queue.start_next(job_queue.workspace_of(job_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
