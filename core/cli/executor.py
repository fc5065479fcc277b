"""`studio executor`: where the queue runs jobs — this machine, or a team's Ray cluster (core.executor).
The same flags also work on `studio serve`, which saves them before starting the pages."""
from __future__ import annotations

import json

from core.cli.common import fail, workspace
from core.executor import EXECUTORS, ExecutorError, describe, ray_setting, read_setting, write_setting


def executor_args(p) -> None:
    """The executor flags, shared by `studio serve` and `studio executor`."""
    p.add_argument("--executor", choices=EXECUTORS,
                   help="where queued jobs run from now on: local (this machine) or ray (a Ray cluster, through "
                        "Ray Jobs; needs --address); saved in the workspace")
    p.add_argument("--address", help="ray: the cluster's dashboard address, e.g. http://HEAD:8265")
    p.add_argument("--slots", type=int, help="ray: jobs handed to the cluster at once (default 4); the cluster "
                                             "queues what it cannot run yet")
    p.add_argument("--gpus-per-job", type=int, help="ray: GPUs a job reserves per process (default 1; 0 for a "
                                                    "CPU-only cluster)")
    p.add_argument("--cpus-per-job", type=int, help="ray: CPUs a job reserves, and the threads it uses (default 1)")
    p.add_argument("--python", help="ray: the Python interpreter on the cluster's nodes that has the studio "
                                    "installed (default: this one, the same path on a shared filesystem)")


def set_executor(ws, a) -> int:
    """Save the executor the flags ask for; 0, or 1 after printing why it cannot work."""
    try:
        if a.executor == "ray":
            setting = ray_setting(a.address, slots=a.slots, gpus_per_job=a.gpus_per_job,
                                  cpus_per_job=a.cpus_per_job, python=a.python)
        else:
            setting = {"kind": "local"}
        write_setting(ws, setting)
    except (ExecutorError, ConnectionError, RuntimeError) as e:
        return fail(str(e))
    return 0


def cmd_executor(a) -> int:
    ws = workspace(a)
    if a.executor is not None:
        code = set_executor(ws, a)
        if code:
            return code
    setting = read_setting(ws)
    print(json.dumps(setting) if a.json else describe(setting))
    return 0


def add_parsers(sub, common) -> None:
    x = sub.add_parser("executor", parents=[common],
                       help="show or set where queued jobs run: this machine or a Ray cluster")
    executor_args(x)
    x.add_argument("--json", action="store_true")
    x.set_defaults(func=cmd_executor)
