"""A statement whose ML functions answer many rows runs as a job of kind `sql` (core.jobs.create_sql):
the worker runs the whole statement through the same code as an inline run, reports rows done, and
writes the result into the job folder: result.parquet (the rows, when the statement returns rows) and
result.json {statement, kind, message, columns, rows, seconds}. The job waits in the device queue of
the model it uses, so it runs after that model's tuning run; the worker checks the run succeeded."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from core import job_queue, jobs, runs
from core.names import ACTIVE_STATES, FINAL_STATES
from core.sql import models
from core.sql.errors import SqlError
from core.sql.history import RESULT_JSON
from core.sql.result import SqlResult

RESULT_PARQUET = "result.parquet"


def device_for(workspace: Path, refs: list[models.ModelRef]) -> str:
    """The queue to wait in: the device of the first tuned model's run (so the job runs after it)."""
    for ref in refs:
        if ref.run_id:
            return models.run_config(workspace, ref).get("device") or "auto"
    return "auto"


def submit(workspace: Path, text: str, refs: list[models.ModelRef], rows: int, allow_dirs=()) -> tuple[Path, str]:
    """Make and queue the job; returns (its folder, "started" or "queued")."""
    job_dir = jobs.create_sql(workspace, text, allow_dirs=allow_dirs, device=device_for(workspace, refs), total=rows)
    return job_dir, jobs.submit(job_dir)


def wait_for_runs(workspace: Path, refs: list[models.ModelRef]) -> None:
    """In the worker: a model's run still training (a device running several jobs at once) is waited for."""
    for ref in refs:
        if ref.run_id and runs.read_status(models.run_dir(workspace, ref)).get("state") in ACTIVE_STATES:
            jobs.wait(models.run_dir(workspace, ref), poll=2.0)


def write_result(job_dir: Path, result: SqlResult) -> None:
    if result.frame is not None:
        result.frame.to_parquet(job_dir / RESULT_PARQUET, index=False)
    runs.write_json(job_dir / RESULT_JSON, {
        "statement": result.statement, "kind": result.kind, "message": result.message,
        "columns": [str(c) for c in result.frame.columns] if result.frame is not None else [],
        "rows": result.rows, "seconds": round(result.seconds, 3)})


def sql_job_result(job_dir: str | Path) -> SqlResult | None:
    """A finished sql job's result (None while it waits or runs). A failed or cancelled job raises
    SqlError with the worker's error and hint."""
    job_dir = Path(job_dir)
    status = runs.read_status(job_dir)
    if status.get("state") not in FINAL_STATES:
        return None
    done = runs.read_json(job_dir / RESULT_JSON, None)
    if status["state"] != "succeeded" or not isinstance(done, dict):
        raise SqlError(f"the job {job_dir.name} {status.get('state')}" + (f": {status['error']}" if status.get("error") else ""),
                       clause=f"job {job_dir.name}", hint=status.get("hint") or f"Its log: {job_dir / 'worker.log'}")
    frame = pd.read_parquet(job_dir / RESULT_PARQUET) if (job_dir / RESULT_PARQUET).exists() else None
    return SqlResult(statement=done.get("statement", ""), kind=done.get("kind", "rows"), frame=frame,
                     message=done.get("message", ""), job_dir=str(job_dir), seconds=float(done.get("seconds") or 0))


def run_sql_job(job_dir: str | Path, config: dict, progress: Callable[[int, int], None] | None = None) -> SqlResult:
    """The worker's side: run the statement in this process, then write its result."""
    from core.sql.engine import run_statement  # the engine submits these jobs: imported when one runs

    job_dir = Path(job_dir)
    workspace = job_queue.workspace_of(job_dir)
    started = time.perf_counter()
    result = run_statement(workspace, config["statement"], allow_dirs=tuple(config.get("allow_dirs") or ()),
                           on_rows=progress, job_dir=job_dir, device=config.get("device") or "auto")
    result.seconds = time.perf_counter() - started
    result.job_dir = str(job_dir)
    write_result(job_dir, result)
    return result
