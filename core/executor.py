"""Where the queue's jobs run: on this machine (the default), or on a team's Ray cluster through Ray Jobs.

The choice is a workspace setting, `executor.json`, so every process that starts jobs (the pages, the
CLI, a worker starting the next job) sends them to the same place:
  {"kind": "local"}
  {"kind": "ray", "address": "http://HEAD:8265", "slots": 4, "gpus_per_job": 1, "cpus_per_job": 1,
   "python": "/path/to/.venv/bin/python"}
`studio serve --executor ray --address …` (or `studio executor ray --address …`) writes it. With Ray, a
job folder is handed to the cluster as it is (core.ray_executor): the cluster's nodes must see the
workspace at the same path (a shared filesystem) and have the studio installed, so the worker writes
status.json, metrics and worker.log straight into the folder the pages read.

No Ray here: this module only reads and writes the setting (the UI imports it through core.job_queue)."""
from __future__ import annotations

import sys
from pathlib import Path

from core import runs

EXECUTOR_FILE = "executor.json"
EXECUTORS = ("local", "ray")
# Jobs handed to the cluster at once (per device kind); the cluster's own scheduler decides where and
# when each runs, so more than it can hold just wait there (and can still be cancelled).
DEFAULT_RAY_SLOTS = 4
LOCAL = {"kind": "local"}


class ExecutorError(ValueError):
    """An executor setting that cannot work; the message says which and why."""


def read_setting(workspace: str | Path) -> dict:
    """The workspace's executor setting; a missing or damaged file means this machine."""
    setting = runs.read_json(Path(workspace) / EXECUTOR_FILE, None)
    if not isinstance(setting, dict) or setting.get("kind") not in EXECUTORS:
        return dict(LOCAL)
    if setting["kind"] == "ray" and not setting.get("address"):
        return dict(LOCAL)
    return setting


def _positive_int(value, name: str, minimum: int = 1) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ExecutorError(f"{name} must be a whole number, got {value!r}") from None
    if number < minimum:
        raise ExecutorError(f"{name} must be at least {minimum}, got {number}")
    return number


def ray_setting(address: str, slots=None, gpus_per_job=None, cpus_per_job=None, python: str | None = None) -> dict:
    """A checked Ray setting. The address is the Ray dashboard's (Ray Jobs goes through it), e.g.
    http://head-node:8265; a bare host:port gets http:// in front."""
    address = (address or "").strip()
    if not address:
        raise ExecutorError("the ray executor needs the cluster's address: --address http://HEAD:8265 "
                            "(the Ray dashboard's address, where Ray Jobs are submitted)")
    if "://" not in address:
        address = f"http://{address}"
    return {"kind": "ray", "address": address,
            "slots": _positive_int(slots if slots is not None else DEFAULT_RAY_SLOTS, "slots"),
            "gpus_per_job": _positive_int(gpus_per_job if gpus_per_job is not None else 1, "gpus_per_job", 0),
            "cpus_per_job": _positive_int(cpus_per_job if cpus_per_job is not None else 1, "cpus_per_job"),
            "python": python or sys.executable}


def write_setting(workspace: str | Path, setting: dict, check: bool = True) -> dict:
    """Save the setting for the workspace. With `check`, a Ray setting is tried first (Ray installed,
    the cluster answering), so a typo fails here and not on the first job."""
    if setting.get("kind") not in EXECUTORS:
        raise ExecutorError(f"executor must be one of {', '.join(EXECUTORS)}, got {setting.get('kind')!r}")
    if setting["kind"] == "ray" and check:
        from core import ray_executor

        ray_executor.check_cluster(setting["address"])
    runs.write_json(Path(workspace) / EXECUTOR_FILE, setting)
    return setting


def describe(setting: dict) -> str:
    """One line on where jobs run, for `studio serve`, `studio executor` and the pages."""
    if setting.get("kind") != "ray":
        return "Jobs run on this machine"
    return (f"Jobs run on the Ray cluster at {setting['address']} (up to {setting.get('slots')} at once, "
            f"{setting.get('gpus_per_job')} GPU(s) and {setting.get('cpus_per_job')} CPU(s) each)")
