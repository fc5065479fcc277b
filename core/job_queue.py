"""One compute queue per device for every kind of job (tuning, speed trials, evaluation, candidate pairs).

A device runs `slots(device)` jobs at once (1 unless a GPU is configured for more): every torch process
takes all the cores it is given, so two on one CPU slow each other tenfold. Later jobs wait in
queue.json order. Every decision happens under a file lock, so two launches at once never both start.
queue.json = {"waiting": [{"job": PATH, "device": D}], "started": [...]}, PATH relative to the workspace.

Nothing here imports torch: the UI and the CLI import this module. A job runs as `python -m core.worker
DIR` in its own process session, so it outlives a closed browser or a stopped `studio serve`. A tuning job
that asks for several processes (core.launch) takes the whole device while it runs. With the Ray executor
(core.executor) a started job is handed to the cluster instead (core.ray_executor), `slots` at a time."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from core import executor, launch, runs
from core.names import CONFIG_FILE, FINAL_STATES, JOB_FILE, QUEUE_FILE, STATUS_FILE, WORKER_LOG

# Environment: how many jobs one GPU runs at once (big GPUs fit several small jobs); CPUs run one.
SLOTS_ENV = "STUDIO_JOBS_PER_GPU"
# Set for a worker process: the CPU threads it may use (core.launch), so processes never oversubscribe the cores.
THREADS_ENV = launch.THREADS_ENV


# ---------------------------------------------------------------- devices

def default_device() -> str:
    """The device `auto` lands on, found without importing torch (pages import this module)."""
    if Path("/dev/nvidia0").exists() or Path("/dev/nvidiactl").exists():
        return "cuda"
    if sys.platform == "darwin" and os.uname().machine == "arm64":
        return "mps"
    return "cpu"


def device_of(config: dict) -> str:
    """The queue a job waits in: the device its config asks for, `auto` resolved."""
    device = (config or {}).get("device") or "auto"
    return default_device() if device == "auto" else device


def slots(device: str) -> int:
    if device == "cpu":
        return 1
    try:
        return max(1, int(os.environ.get(SLOTS_ENV, "1")))
    except ValueError:
        return 1


def cpu_threads(device: str) -> int:
    """CPU threads for one worker: the cores this process may use, shared by the jobs that run at once."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // slots(device))


# ---------------------------------------------------------------- the queue file

@contextmanager
def _locked(workspace: Path):
    workspace.mkdir(parents=True, exist_ok=True)
    with open(workspace / ".queue.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read(workspace: Path) -> dict:
    data = runs.read_json(workspace / QUEUE_FILE, None)
    if isinstance(data, list):  # the first queue held run ids of tuning runs only
        data = {"waiting": [{"job": f"runs/{r}", "device": default_device()} for r in data], "started": []}
    data = data or {}
    return {"waiting": list(data.get("waiting") or []), "started": list(data.get("started") or [])}


def _write(workspace: Path, data: dict) -> None:
    runs.write_json(workspace / QUEUE_FILE, data)


def workspace_of(job_dir: str | Path) -> Path:
    """A job folder's workspace: job.json records the folder's path inside it."""
    job_dir = Path(job_dir).resolve()
    where = (runs.read_json(job_dir / JOB_FILE, {}) or {}).get("path") or f"runs/{job_dir.name}"
    return job_dir.parents[len(Path(where).parts) - 1]


def job_path(job_dir: str | Path) -> str:
    job_dir = Path(job_dir).resolve()
    return str(job_dir.relative_to(workspace_of(job_dir)))


def _entry(job_dir: Path) -> dict:
    job = runs.read_json(job_dir / JOB_FILE, {}) or {}
    config = job.get("config") or runs.read_json(job_dir / CONFIG_FILE, {}) or {}
    processes = launch.processes_of({**job, "config": config})
    return {"job": job_path(job_dir), "device": device_of(config), **({"processes": processes} if processes > 1 else {})}


# ---------------------------------------------------------------- reaping and launching

def reap_job(job_dir: str | Path, cause: str | None = None, pids: tuple[int, ...] = ()) -> bool:
    """Record a job whose worker vanished (killed, crashed) as failed; True if it was. With `cause`,
    the caller saw the worker end (its pid among `pids`): a status that a newer launch (a resume) owns
    by now is left alone."""
    job_dir = Path(job_dir)
    status = runs.read_json(job_dir / STATUS_FILE, {}) or {}
    if status.get("state") in FINAL_STATES or not status:
        return False
    if cause is not None and status.get("pid") not in pids:
        return False
    if cause is None and not runs.worker_gone(status):
        return False
    failure = runs.failure_of_gone_worker(job_dir)
    if cause:
        failure["error"] = cause
    runs.update_status(job_dir, **failure)
    return True


def _reap(workspace: Path, data: dict) -> None:
    """Drop finished jobs from `started`, recording vanished workers as failed (under the lock)."""
    alive = []
    for e in data["started"]:
        job_dir = workspace / e["job"]
        reap_job(job_dir)
        status = runs.read_json(job_dir / STATUS_FILE, {}) or {}
        # Still on the device: running, or launched (a pid) and not yet running. A queued status without
        # a pid was put back in line (a resume) and holds no device.
        # (For a job on a Ray cluster the pid is its local watcher's until the worker starts.)
        if job_dir.is_dir() and (status.get("state") == "running"
                                 or (status.get("state") == "queued" and status.get("pid"))):
            alive.append(e)
    data["started"] = alive


def reap(workspace: str | Path) -> None:
    """Explicitly look for vanished workers and start what can start (the queue's own repair)."""
    start_next(workspace)


def _spawn(job_dir: Path, device: str) -> subprocess.Popen:
    env = dict(os.environ)
    # The worker must find the `core` package even when started from another folder.
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    threads = str(cpu_threads(device))
    env.update({THREADS_ENV: threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})
    with open(job_dir / WORKER_LOG, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "core.worker", str(job_dir)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)


def _launch(workspace: Path, data: dict, entry: dict) -> None:
    job_dir = workspace / entry["job"]
    setting = executor.read_setting(workspace)
    if setting["kind"] == "ray":
        from core import ray_executor  # Ray's client loads only when jobs go to a cluster

        try:
            where = ray_executor.submit(job_dir, runs.read_json(job_dir / JOB_FILE, {}) or {}, setting)
        except Exception as e:  # unreachable cluster, Ray missing, submission refused: the job fails, not the queue
            runs.update_status(job_dir, state="failed", finished=runs.now_iso(),
                               error=f"Could not submit to the Ray cluster at {setting['address']}: {e}",
                               hint="Check that the cluster is up (`ray status` on its head node), or run jobs "
                                    "on this machine again: studio executor local.")
            return
    else:
        where = {"pid": _spawn(job_dir, entry["device"]).pid}
    # Record the pid now, so a worker that dies while importing torch is still detected.
    # launcher_pid: the torchrun of an earlier launch (core.worker.supervise) no longer owns the folder.
    runs.update_status(job_dir, heartbeat_ts=time.time(), launched=runs.now_iso(), launcher_pid=None, **where)
    data["started"].append(entry)


def _slots(workspace: Path, device: str) -> int:
    setting = executor.read_setting(workspace)
    return int(setting.get("slots") or 1) if setting["kind"] == "ray" else slots(device)


def _free(workspace: Path, data: dict, entry: dict) -> bool:
    """Room on the entry's device. Locally, a job of several processes needs the device to itself (one
    process per GPU), and nothing starts beside it; on a cluster, Ray places each job itself."""
    device = entry["device"]
    beside = [e for e in data["started"] if e["device"] == device]
    if executor.read_setting(workspace)["kind"] == "local" and beside and (
            entry.get("processes", 1) > 1 or any(e.get("processes", 1) > 1 for e in beside)):
        return False
    return len(beside) < _slots(workspace, device)


# ---------------------------------------------------------------- the queue's verbs

def submit(job_dir: str | Path) -> str:
    """Start the job now if its device is free and nobody waits for it, else queue it at the end.
    Returns "started" or "queued"."""
    job_dir = Path(job_dir).resolve()
    workspace = workspace_of(job_dir)
    entry = _entry(job_dir)
    with _locked(workspace):
        data = _read(workspace)
        data["waiting"] = [e for e in data["waiting"] if e["job"] != entry["job"]]  # a resubmission replaces
        _reap(workspace, data)
        if _free(workspace, data, entry) and not any(e["device"] == entry["device"] for e in data["waiting"]):
            _launch(workspace, data, entry)
            _write(workspace, data)
            return "started"
        data["waiting"].append(entry)
        _write(workspace, data)
        runs.update_status(job_dir, queued_since=runs.now_iso())
        return "queued"


def start_next(workspace: str | Path) -> list[str]:
    """Start the first waiting jobs of every device that has room; called when a worker ends and by
    reap(). Returns the started jobs' paths."""
    workspace = Path(workspace).resolve()
    started = []
    with _locked(workspace):
        data = _read(workspace)
        _reap(workspace, data)
        blocked = set()  # a device whose next job cannot start yet: the jobs behind it wait too (no overtaking)
        for entry in list(data["waiting"]):
            if entry["device"] in blocked or not _free(workspace, data, entry):
                blocked.add(entry["device"])
                continue
            data["waiting"].remove(entry)
            job_dir = workspace / entry["job"]
            if job_dir.is_dir() and runs.read_status(job_dir).get("state") == "queued":
                _launch(workspace, data, entry)
                started.append(entry["job"])
        _write(workspace, data)
    return started


def waiting(workspace: str | Path) -> list[dict]:
    """Jobs waiting to start, first to start first: {"job": path, "id": folder name, "device"}."""
    return [{**e, "id": Path(e["job"]).name} for e in _read(Path(workspace))["waiting"]]


def started(workspace: str | Path) -> list[dict]:
    """Jobs the queue launched that had not ended when it last looked."""
    return [{**e, "id": Path(e["job"]).name} for e in _read(Path(workspace))["started"]]


def queue(workspace: str | Path) -> list[str]:
    """Ids (folder names) of the waiting jobs, first to start first."""
    return [e["id"] for e in waiting(workspace)]


def position(workspace: str | Path, job_id: str) -> tuple[int, int] | None:
    """(1-based place, length) of a waiting job in its device's queue; None if it is not waiting."""
    items = waiting(workspace)
    mine = next((e for e in items if e["id"] == job_id), None)
    if mine is None:
        return None
    same = [e["id"] for e in items if e["device"] == mine["device"]]
    return same.index(job_id) + 1, len(same)


def _take_waiting(data: dict, job_id: str) -> dict:
    """Take a waiting job's entry out of the queue data (under the lock); ValueError if it is not waiting."""
    entry = next((e for e in data["waiting"] if Path(e["job"]).name == job_id), None)
    if entry is None:
        raise ValueError(f"job {job_id} is not waiting in the queue")
    data["waiting"].remove(entry)
    return entry


def move(workspace: str | Path, job_id: str, place: int) -> list[str]:
    """Put a waiting job at `place` (0 = next to start)."""
    workspace = Path(workspace)
    with _locked(workspace):
        data = _read(workspace)
        entry = _take_waiting(data, job_id)
        data["waiting"].insert(max(0, min(place, len(data["waiting"]))), entry)
        _write(workspace, data)
        return [Path(e["job"]).name for e in data["waiting"]]


def remove(workspace: str | Path, job_id: str) -> None:
    """Take a waiting job out of the queue; it ends as cancelled without having started."""
    workspace = Path(workspace)
    with _locked(workspace):
        data = _read(workspace)
        entry = _take_waiting(data, job_id)
        _write(workspace, data)
        runs.update_status(workspace / entry["job"], state="cancelled", finished=runs.now_iso(),
                           error=None, hint="Removed from the queue before it started.")
