"""Queued jobs on a Ray cluster, through Ray Jobs (the `ray` extra: `pip install -e .[ray]`).

The queue (core.job_queue) decides which job goes next; this module hands it to the cluster unchanged:
the entrypoint is the same command the queue runs here (core.launch.worker_command: the worker, or
torchrun around N of them), with the GPUs and CPUs it needs reserved through Ray's entrypoint
resources, so the cluster's scheduler places it. The worker on the node writes status.json, metrics
and worker.log into the job folder itself (the workspace is on a shared filesystem, at the same path).

What the folder cannot tell by itself, a small local watcher process (`python -m core.ray_executor
watch …`, one per submitted job, the counterpart of core.worker's supervisor) follows through the
Ray Jobs API: a cancel asked for before the worker started becomes `stop_job`; a job that ended on
the cluster without recording how (its node lost, the entrypoint failing before Python started) is
recorded as failed with Ray's own log appended to worker.log; then the next queued job is started."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

from core import launch, runs
from core.names import CANCEL_FILE, FINAL_STATES, STATUS_FILE, WORKER_LOG

RAY_EXTRA_HINT = "Install the cluster extra: pip install -e '.[ray]' (Ray Jobs needs ray[default])."
# Seconds between two looks at a submitted job; a cluster that does not answer is asked again later.
POLL_EVERY = 1.0
RETRY_EVERY = 5.0
# After this many seconds without an answer the watcher gives up: the worker's heartbeat (or its absence,
# which the queue records as a vanished worker) tells the rest.
PATIENCE_ENV = "STUDIO_RAY_WATCH_PATIENCE"
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def client(address: str):
    """A Ray Jobs client for the cluster at `address` (the dashboard's http address)."""
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as e:
        raise RuntimeError(f"the ray executor needs Ray, which is not installed. {RAY_EXTRA_HINT}") from e
    return JobSubmissionClient(address)


def check_cluster(address: str) -> None:
    """Raise a clear error unless a Ray cluster answers at `address`."""
    try:
        client(address)
    except RuntimeError:
        raise
    except Exception as e:  # connection refused, wrong port, not a Ray dashboard …
        raise ConnectionError(f"no Ray cluster answers at {address} ({str(e).rstrip('. ')}). Give the address of the cluster's "
                              "dashboard (Ray Jobs), e.g. http://HEAD:8265, and check that it is running.") from e


def entrypoint(job_dir: Path, processes: int, python: str) -> str:
    """The shell command Ray runs: the worker (or torchrun) with its output appended to worker.log."""
    command = shlex.join(launch.worker_command(job_dir, processes, python=python))
    return f"{command} >> {shlex.quote(str(job_dir / WORKER_LOG))} 2>&1"


def environment(processes: int, cpus: int) -> dict[str, str]:
    """Environment variables for the job on the node: it runs the job itself (no local supervisor: the
    watcher is that), finds the `core` package, and uses the CPUs reserved for it."""
    root = str(Path(__file__).resolve().parent.parent)
    threads = str(max(1, cpus // max(1, processes)))
    return {launch.CHILD_ENV: "1", "PYTHONPATH": root, "TOKENIZERS_PARALLELISM": "false",
            launch.THREADS_ENV: threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


def submit(job_dir: Path, job: dict, setting: dict) -> dict:
    """Submit one job folder to the cluster and start its local watcher. Returns the status fields that
    say where it went (pid: the watcher's, so a vanished watcher is noticed like a vanished worker)."""
    processes = launch.processes_of(job)
    # `auto` is decided on the node, not here (the studio's own machine may have no GPU): it reserves GPUs
    # unless the setting says the cluster has none (gpus_per_job 0).
    asked = (job.get("config") or {}).get("device") or "auto"
    gpus = processes * int(setting.get("gpus_per_job", 1)) if asked in ("auto", "cuda") else 0
    cpus = max(int(setting.get("cpus_per_job", 1)), processes)
    submission_id = f"studio-{job_dir.name}-{uuid.uuid4().hex[:6]}"
    client(setting["address"]).submit_job(
        entrypoint=entrypoint(job_dir, processes, setting.get("python") or sys.executable),
        submission_id=submission_id, runtime_env={"env_vars": environment(processes, cpus)},
        entrypoint_num_cpus=cpus, entrypoint_num_gpus=gpus or None,
        metadata={"studio_job": str(job_dir), "kind": str(job.get("kind"))})
    with open(job_dir / WORKER_LOG, "ab") as log:
        log.write(f"submitted to the Ray cluster at {setting['address']} as {submission_id} "
                  f"({processes} process(es), {gpus} GPU(s), {cpus} CPU(s))\n".encode())
        root = str(Path(__file__).resolve().parent.parent)  # the watcher finds `core` from any folder
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
        watcher = subprocess.Popen([sys.executable, "-m", "core.ray_executor", "watch", str(job_dir), submission_id,
                                    setting["address"]], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    return {"pid": watcher.pid, "executor": "ray", "ray_job": submission_id, "ray_address": setting["address"]}


def _mine(job_dir: Path, submission_id: str) -> dict | None:
    """The folder's status while this submission still owns it (a resume makes a new one), else None."""
    status = runs.read_json(job_dir / STATUS_FILE, {}) or {}
    return status if status.get("ray_job") == submission_id else None


def record_end(job_dir: Path, submission_id: str, ray_status: str, message: str, logs: str) -> None:
    """After the job ended on the cluster: if the worker did not record how (never started, or killed
    with its node), record it here, with Ray's log of the job for the cause."""
    status = _mine(job_dir, submission_id)
    if status is None or status.get("state") in FINAL_STATES:
        return
    if logs.strip():
        with open(job_dir / WORKER_LOG, "a", encoding="utf-8") as f:
            f.write(f"--- Ray's log of {submission_id} ---\n{logs.rstrip()}\n")
    if ray_status == "STOPPED":
        started = status.get("state") == "running"
        runs.update_status(job_dir, state="cancelled", finished=runs.now_iso(), error=None,
                           hint="Stopped on the Ray cluster." if started else
                           "Cancelled on the Ray cluster before it started.")
        return
    runs.update_status(job_dir, state="failed", finished=runs.now_iso(),
                       error=f"The job ended on the Ray cluster as {ray_status} without recording how"
                             f"{': ' + message if message else ''}.",
                       hint="Read the end of the log (Ray's own log of the job is appended). The cluster's nodes "
                            "need the studio installed and the workspace at the same path.")


def watch(job_dir: Path, submission_id: str, address: str) -> str:
    """Follow one submitted job until it ends on the cluster; returns Ray's final status."""
    from core import job_queue  # the queue imports this module lazily; this process needs both

    ray, stop_asked = None, False
    patience, unanswered_since = float(os.environ.get(PATIENCE_ENV, "600")), None
    while True:
        try:
            ray = ray or client(address)
            info = ray.get_job_info(submission_id)
            unanswered_since = None
        except Exception as e:  # the cluster is briefly unreachable: the worker's heartbeat still tells
            unanswered_since = unanswered_since or time.time()
            if time.time() - unanswered_since > patience:
                print(f"the Ray cluster at {address} has not answered for {patience:.0f} s; no longer watching "
                      f"{submission_id}", flush=True)
                return "UNKNOWN"
            print(f"asking the Ray cluster about {submission_id} failed: {e}; asking again", flush=True)
            ray = None
            time.sleep(RETRY_EVERY)
            continue
        status = str(info.status)
        if status in TERMINAL:
            break
        mine = _mine(job_dir, submission_id)
        if mine is None:  # a resume or a delete took the folder over: stop following
            return status
        if (job_dir / CANCEL_FILE).exists() and not stop_asked and mine.get("state") != "running":
            # The worker has not started, so nobody reads the cancel file yet: the cluster stops it. A
            # running worker stops by itself after its step (keeping a checkpoint), as on this machine.
            ray.stop_job(submission_id)
            stop_asked = True
        time.sleep(POLL_EVERY)
    try:
        logs = ray.get_job_logs(submission_id)
    except Exception:  # the log is a help, not a must
        logs = ""
    record_end(job_dir, submission_id, status, str(info.message or ""), logs)
    job_queue.start_next(job_queue.workspace_of(job_dir))
    return status


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 4 or argv[0] != "watch":
        print("usage: python -m core.ray_executor watch JOB_DIR SUBMISSION_ID ADDRESS", file=sys.stderr)
        return 2
    watch(Path(argv[1]).resolve(), argv[2], argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main())
