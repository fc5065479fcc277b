"""What the queue panel and `studio queue` show: every job on a device or waiting for one, of every kind,
with its progress, its place in its device's queue, and when it is likely to start. Reads only.

Times come from measurements, never from guesses about hardware: a running job's own pace, and for a
waiting job the pace of the last finished job of its kind with the same model (a tuning run's seconds
per step, an evaluation's answers per second in the same answering mode). Where nothing comparable has
run, there is no estimate."""
from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from core import job_queue, jobs, runs
from core.config import ConfigError, EvalConfig, recorded_eval_mode
from core.evaluate import list_evaluations
from core.names import ACTIVE_STATES, JOB_KIND_NAMES


def _seconds_since(iso: str | None) -> float | None:
    try:
        return time.time() - datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return None


def remaining_seconds(status: dict) -> float | None:
    """A running job's time left at its own pace so far."""
    if status.get("eta_s") is not None:
        return float(status["eta_s"])
    done, total, elapsed = status.get("done") or 0, status.get("total") or 0, _seconds_since(status.get("started"))
    if done and total and elapsed:
        return elapsed / done * (total - done)
    return None


def step_seconds(workspace: Path, config: dict) -> float | None:
    """Seconds per step of the newest finished run with this model, method, batch size and device (`auto`
    resolved, so a run asked for `auto` and one for the device it lands on compare)."""
    for r in runs.list_runs(workspace):
        c = r["config"]
        same = all(c.get(k) == config.get(k) for k in ("model", "batch_size", "method"))
        if r["status"].get("state") != "succeeded" or not same or job_queue.device_of(c) != job_queue.device_of(config):
            continue
        times = [m["time"] for m in runs.read_metrics(r["run_dir"]) if "loss" in m and "time" in m]
        if len(times) > 2:
            return (times[-1] - times[0]) / (len(times) - 1)
    return None


def expected_seconds(workspace: Path, kind: str, config: dict) -> float | None:
    """How long a waiting job will take, from the newest comparable finished job."""
    if kind in ("tune", "estimate"):
        per_step = step_seconds(workspace, config)
        return per_step * int(config.get("max_iterations") or 0) if per_step else None
    if kind == "evaluate":  # same mode too: scoring labels is many times faster than generating
        try:  # the config reads older job.json files (constrained: true, no mode) as it always has
            mode = EvalConfig.from_dict(config).mode
        except (ConfigError, TypeError):  # a damaged job.json: no estimate, never a broken page
            return None
        for e in list_evaluations(workspace):
            metrics = runs.read_json(Path(e["dir"]) / "metrics.json", {}) or {}
            if metrics.get("rows_per_second") and (metrics.get("run_id") or None) == (config.get("run_id") or None) \
                    and recorded_eval_mode(metrics) == mode:
                rows = config.get("limit") or metrics.get("rows") or 0
                return rows * (2 if config.get("run_id") else 1) / metrics["rows_per_second"]
    return None


def _describe(workspace: Path, entry: dict) -> dict:
    job_dir = workspace / entry["job"]
    job, status = jobs.read_job(job_dir), runs.read_status(job_dir)
    kind = job.get("kind", "tune")
    if kind in ("tune", "estimate", "embed_tune", "image_tune", "image_trial"):
        progress = f"step {status.get('step') or 0} of {status.get('max_steps') or '?'}"
    else:
        progress = f"{status.get('done') or 0} of {status.get('total') or '?'} answers"
    return {"id": job_dir.name, "dir": str(job_dir), "kind": kind, "kind_name": JOB_KIND_NAMES.get(kind, kind),
            "name": status.get("name") or job.get("name") or job_dir.name, "device": entry["device"],
            "state": status.get("state"), "phase": status.get("phase"), "progress": progress,
            "config": job.get("config") or {}, "status": status}


def overview(workspace: str | Path) -> dict:
    """{"running": [job…], "waiting": [job… with position and starts_in_s]}, each device's jobs in order."""
    workspace = Path(workspace)
    running = [_describe(workspace, e) for e in job_queue.started(workspace)]
    running = [j for j in running if j["state"] in ACTIVE_STATES]
    for j in running:
        j["remaining_s"] = remaining_seconds(j["status"])
    ahead: dict[str, float | None] = {}
    for j in running:  # a device with several slots frees its first one soonest: use the shortest
        left = j["remaining_s"]
        prev = ahead.get(j["device"], float("inf"))
        ahead[j["device"]] = None if left is None or prev is None else min(prev, left)
    waiting, places = [], {}
    for e in job_queue.waiting(workspace):
        j = _describe(workspace, e)
        places[j["device"]] = places.get(j["device"], 0) + 1
        start = ahead.get(j["device"], 0.0)
        j.update(position=places[j["device"]], starts_in_s=None if start in (None, float("inf")) else round(start))
        took = expected_seconds(workspace, j["kind"], j["config"])
        ahead[j["device"]] = None if start is None or took is None or start == float("inf") else start + took
        waiting.append(j)
    for j in (*running, *waiting):
        j.pop("status")
    return {"running": running, "waiting": waiting}
