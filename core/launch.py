"""How a job's worker is started: one process, or N processes of one job under torchrun (data parallel).

A tuning job (supervised, DPO, a distillation student) may ask for `processes` > 1: then the queue's
supervisor runs `python -m torch.distributed.run --standalone --nproc_per_node N -m core.worker DIR`
instead of `python -m core.worker DIR`. torchrun sets RANK/WORLD_SIZE for each process; the Trainer
(through accelerate) then wraps the model for data parallel training — NCCL on GPUs, gloo on CPUs — and
core.worker lets only rank 0 write the run folder. One process per GPU; on a CPU the same launch runs
N CPU processes, which is how it is tested.

Nothing here imports torch: the Tune page asks how many GPUs there are before offering the choice."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

# Job kinds that train and so can run as several processes; every other kind runs as one.
MULTI_PROCESS_KINDS = ("tune", "estimate")
# Set for a worker process: the CPU threads it may use, so processes never oversubscribe the cores.
THREADS_ENV = "STUDIO_WORKER_THREADS"
# Set for the process that runs the job itself (not the supervisor around it; see core.worker.main).
CHILD_ENV = "STUDIO_WORKER_CHILD"


def gpu_count() -> int:
    """CUDA GPUs this process may use, found without importing torch: the device files, narrowed by
    CUDA_VISIBLE_DEVICES when it is set."""
    found = [p for p in Path("/dev").glob("nvidia*") if re.fullmatch(r"nvidia\d+", p.name)]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return len(found)
    chosen = [v for v in visible.split(",") if v.strip() and v.strip() != "-1"]
    return min(len(found), len(chosen))


def cpu_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def max_processes(device: str) -> int:
    """How many processes a job on `device` can have: one per GPU on CUDA, one per core on a CPU (gloo),
    one on Apple's MPS (no process group backend there)."""
    if device == "cuda":
        return max(1, gpu_count())
    if device == "cpu":
        return cpu_cores()
    return 1


def processes_of(job: dict) -> int:
    """The processes a job asked for (its config's `processes`), 1 for kinds that do not train."""
    if (job or {}).get("kind") not in MULTI_PROCESS_KINDS:
        return 1
    try:
        return max(1, int(((job or {}).get("config") or {}).get("processes") or 1))
    except (TypeError, ValueError):
        return 1


def check_processes(processes: int, device: str) -> None:
    """A clear error before launch when the machine cannot give the job its processes."""
    limit = max_processes(device)
    if processes > limit:
        what = "GPUs" if device == "cuda" else "CPU cores" if device == "cpu" else "processes on this device"
        raise ValueError(f"the job asks for {processes} processes (one per {'GPU' if device == 'cuda' else 'core'}) "
                         f"and this machine has {limit} {what}; lower `processes` to {limit} or fewer")


def worker_command(job_dir: str | Path, processes: int = 1, python: str | None = None) -> list[str]:
    """The command that runs a job folder: the worker itself, or torchrun around N copies of it.
    `--standalone` gives each job its own rendezvous on a free local port, so two jobs never meet."""
    python = python or sys.executable
    if processes <= 1:
        return [python, "-m", "core.worker", str(job_dir)]
    return [python, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
            "--nproc_per_node", str(processes), "-m", "core.worker", str(job_dir)]


def process_env(env: dict, processes: int) -> dict:
    """The environment for the processes of one job: the threads the queue gave the job, shared out
    among its processes (N processes with all the threads each would oversubscribe the cores)."""
    env = dict(env)
    if processes > 1:
        threads = int(env.get(THREADS_ENV) or cpu_cores())
        each = str(max(1, threads // processes))
        env.update({THREADS_ENV: each, "OMP_NUM_THREADS": each, "MKL_NUM_THREADS": each})
        # A dead peer must fail the job, not hang it: NCCL reports errors instead of waiting forever.
        env.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
    return env
