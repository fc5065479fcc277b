"""`studio` subcommands on runs and the job queue: runs, status, cancel, resume, compare, rename,
delete, queue."""
from __future__ import annotations

import json

from core import job_queue, jobs, queue_overview, runs
from core.cli.common import fail, wait_and_show, with_run, workspace
from core.names import JOB_KIND_NAMES


def cmd_runs(a) -> int:
    ws = workspace(a)
    rows = [runs.summary(r) for r in runs.list_runs(ws)]
    if a.json:
        print(json.dumps(rows))
        return 0
    waiting = job_queue.queue(ws)
    for r in rows:
        best = f"best eval {r['best_eval_loss']:.4f} @ {r['best_step']}" if r["best_eval_loss"] is not None else ""
        where = f" #{waiting.index(r['run_id']) + 1}" if r["run_id"] in waiting else ""
        print(f"{r['run_id']:<38} {r['name'][:20]:<20} {(r['state'] or '?') + where:<11} {r['task'] or '':<15} "
              f"step {r['steps']}/{r['max_steps']}  {r['dataset']}  {best}")
    return 0


def cmd_compare(a) -> int:
    ws = workspace(a)
    try:
        dirs = [runs.run_path(ws, r) for r in a.run_ids]
    except (ValueError, FileNotFoundError) as e:
        return fail(str(e))
    result = runs.compare(dirs)
    if a.json:
        print(json.dumps(result))
        return 0
    for r in result["runs"]:
        best = f"{r['best_eval_loss']:.4f} @ step {r['best_step']}" if r["best_eval_loss"] is not None else "-"
        last = next((m["loss"] for m in reversed(result["metrics"][r["run_id"]]) if "loss" in m), None)
        print(f"{r['run_id']}  {r['state']}  steps {r['steps']}/{r['max_steps']}  best eval loss {best}  "
              f"last train loss {last if last is None else round(last, 4)}")
    print("\nconfig differences:" if result["config_diff"] else "\nsame config")
    for k, vals in result["config_diff"].items():
        print(f"  {k}: " + "  |  ".join(json.dumps(v) for v in vals))
    return 0


def cmd_queue(a) -> int:
    """Every job on a device or waiting for one; --move reorders; looking also repairs the queue
    (a vanished worker is recorded as failed and the next job starts)."""
    ws = workspace(a)
    job_queue.reap(ws)
    if a.move:
        try:
            job_queue.move(ws, a.move[0], int(a.move[1]) - 1)
        except ValueError as e:
            return fail(str(e))
    overview = queue_overview.overview(ws)
    if a.json:
        print(json.dumps(overview))
        return 0
    for job in overview["running"]:
        print(f"now  {job['id']:<40} {JOB_KIND_NAMES.get(job['kind'], job['kind']):<16} {job['device']:<5} "
              f"{job['progress']}")
    for job in overview["waiting"]:
        eta = f"starts in ~{job['starts_in_s'] / 60:.0f} min" if job.get("starts_in_s") is not None else ""
        print(f"{job['position']:>3}. {job['id']:<40} {JOB_KIND_NAMES.get(job['kind'], job['kind']):<16} "
              f"{job['device']:<5} {eta}")
    if not overview["running"] and not overview["waiting"]:
        print("no jobs running or waiting")
    return 0


@with_run
def cmd_rename(a, run_dir) -> None:
    runs.rename(run_dir, a.name)
    print(f"run {a.run_id} is now called {a.name!r}")


def cmd_delete(a) -> int:
    try:
        run_dir = runs.run_path(workspace(a), a.run_id)
        if not a.yes:
            return fail(f"this deletes {run_dir} with its adapter and evaluations; add --yes to confirm")
        jobs.delete_run(run_dir)
    except (ValueError, FileNotFoundError) as e:
        return fail(str(e))
    print(f"deleted run {a.run_id}")
    return 0


@with_run
def cmd_status(a, run_dir) -> None:
    print(json.dumps(runs.read_status(run_dir), indent=None if a.json else 2))


def cmd_resume(a) -> int:
    try:
        run_dir = runs.run_path(workspace(a), a.run_id)
        jobs.resume(run_dir)
    except (ValueError, FileNotFoundError) as e:
        return fail(str(e))
    print(f"run {a.run_id} resumes from its last checkpoint", flush=True)
    if not a.wait:
        return 0
    status = wait_and_show(run_dir)
    print(f"run {a.run_id}: {status['state']}")
    return 0 if status["state"] == "succeeded" else 1


@with_run
def cmd_cancel(a, run_dir) -> None:
    jobs.cancel(run_dir)
    print(f"cancel requested for {a.run_id}; it stops after the current step")


def add_parsers(sub, common) -> None:
    r = sub.add_parser("runs", parents=[common], help="list runs")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_runs)
    st = sub.add_parser("status", parents=[common], help="a run's status")
    st.add_argument("run_id")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)
    c = sub.add_parser("cancel", parents=[common], help="stop a running run after its current step")
    c.add_argument("run_id")
    c.set_defaults(func=cmd_cancel)
    cp = sub.add_parser("compare", parents=[common], help="two or more runs: results, curves and config diff")
    cp.add_argument("run_ids", nargs="+")
    cp.add_argument("--json", action="store_true")
    cp.set_defaults(func=cmd_compare)
    rn = sub.add_parser("rename", parents=[common], help="give a run a readable name")
    rn.add_argument("run_id")
    rn.add_argument("name")
    rn.set_defaults(func=cmd_rename)
    dl = sub.add_parser("delete", parents=[common], help="delete a run folder")
    dl.add_argument("run_id")
    dl.add_argument("--yes", action="store_true", help="confirm")
    dl.set_defaults(func=cmd_delete)
    qu = sub.add_parser("queue", parents=[common], help="jobs running and waiting, per device; reorder with --move")
    qu.add_argument("--move", nargs=2, metavar=("JOB_ID", "POSITION"), help="put a waiting job at POSITION (1 = next)")
    qu.add_argument("--json", action="store_true")
    qu.set_defaults(func=cmd_queue)
    rs = sub.add_parser("resume", parents=[common], help="go on from a failed or cancelled run's last checkpoint")
    rs.add_argument("run_id")
    rs.add_argument("--wait", action="store_true")
    rs.set_defaults(func=cmd_resume)
