"""What every `studio` subcommand shares: the error line, the workspace, one-run lookups, and the
progress line of a job that is being waited for."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import job_queue, jobs, runs
from core.models import RUN_MODEL_PREFIX
from core.names import InvalidName, check_name


def fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def workspace(a) -> Path:
    return runs.workspace_dir(a.workspace)


def nonblank(value: str) -> str:
    """An argparse type: a value that is not empty or only spaces (`--model ''` is a mistake, not the default)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("cannot be empty")
    return value


def name_arg(what: str, max_len: int = 64):
    """An argparse type: a user-given name (a run id, a labeling queue) under core.names.check_name, so an
    empty or unsafe name is an error naming its flag instead of a silent default."""
    def parse(value: str) -> str:
        nonblank(value)
        try:
            return check_name(value, what, max_len=max_len)
        except InvalidName as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


RUN_ID = name_arg("run id", max_len=100)  # the limit of core.runs.run_path
QUEUE = name_arg("queue name")


def model_arg(value: str) -> str:
    """An argparse type: a model name that is not blank; `run:RUN_ID` names a run id like --run does."""
    value = nonblank(value).strip()
    if value.startswith(RUN_MODEL_PREFIX):
        RUN_ID(value[len(RUN_MODEL_PREFIX):])
    return value


def with_run(action):
    """A subcommand on one run id, with the unknown or unsafe id, and what the action refuses (a ValueError
    or a missing file), reported as an error line instead of raised."""
    def cmd(a) -> int:
        try:
            action(a, runs.run_path(workspace(a), a.run_id))
        except (ValueError, FileNotFoundError) as e:
            return fail(str(e))
        return 0
    return cmd


def progress_line(status: dict, metrics: list[dict]) -> str:
    """One line of a job's progress: steps, losses and speed for tuning; answers for generation jobs."""
    if status.get("kind") == "export":
        return status.get("phase") or status.get("state") or ""
    if status.get("total") is not None and status.get("kind") in ("evaluate", "candidates"):
        return f"{status.get('done') or 0}/{status.get('total') or '?'} answers  {status.get('phase') or ''}".rstrip()
    last = next((m for m in reversed(metrics) if "loss" in m), {})
    ev = next((m for m in reversed(metrics) if "eval_loss" in m), {})
    parts = [f"step {status.get('step', 0)}/{status.get('max_steps', '?')}"]
    if "loss" in last:
        parts.append(f"loss {last['loss']:.4f}")
    if "eval_loss" in ev:
        parts.append(f"eval_loss {ev['eval_loss']:.4f}")
    if last.get("tokens_per_s"):
        parts.append(f"{last['tokens_per_s']:.0f} tok/s")
    if status.get("eta_s"):
        parts.append(f"ETA {status['eta_s']:.0f}s")
    return "  ".join(parts)


def submit_and_report(job_dir: Path, quiet: bool = False) -> str:
    """Submit a job; say whether it started or waits, and where it waits."""
    how = jobs.submit(job_dir)
    if not quiet and how == "queued":
        place = job_queue.position(job_queue.workspace_of(job_dir), job_dir.name)
        where = f" (position {place[0]} of {place[1]} in the queue)" if place else ""
        print(f"{job_dir.name} waits for the jobs ahead of it{where}", file=sys.stderr, flush=True)
    return how


def start_run(run_dir: Path, why: str, *, wait: bool, as_json: bool, label: str = "run",
              quiet_progress: bool | None = None, stream=sys.stdout) -> str:
    """Submit a tuning run and say so (and why it has its steps); with `wait`, follow it to its end and say
    how it ended. Returns its state. Progress is quiet with --json unless `quiet_progress` says otherwise."""
    state = submit_and_report(run_dir, quiet=as_json)  # "started" or "queued": what the queue did with it
    if not as_json:
        print(f"{label} {run_dir.name} {state}: {run_dir}\n  {why}", flush=True)
    if wait:
        status = wait_and_show(run_dir, quiet=as_json if quiet_progress is None else quiet_progress, stream=stream)
        state = status.get("state")
        if not as_json:
            print(f"{label} {run_dir.name}: {state}")
            if status.get("error"):
                print(f"  {status['error']}\n  {status.get('hint', '')}")
    return state


def wait_and_show(job_dir: Path, quiet: bool = False, stream=sys.stdout) -> dict:
    """Block until the job ends, printing its progress unless quiet."""
    def show(st, new):
        if not quiet:
            print(progress_line(st, runs.read_metrics(job_dir)), file=stream, flush=True)
    return jobs.wait(job_dir, show, poll=0.5)
