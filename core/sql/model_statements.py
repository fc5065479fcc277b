"""CREATE MODEL and DROP MODEL.

  CREATE [OR REPLACE] MODEL name OPTIONS (endpoint = …)               a base model, usable at once (nothing
                                                                      is loaded or downloaded until used)
  CREATE [OR REPLACE] MODEL name OPTIONS (…) AS SELECT …              a tuning run named after the model,
                                                                      queued; returns at once unless waited for
  DROP MODEL [IF EXISTS] name                                         the name only; a run is never deleted"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from core import jobs, runs
from core.config import BUNDLED_MODEL
from core.names import InvalidName, check_name
from core.sql import models, tuning
from core.sql.database import duckdb_error, open_database
from core.sql.errors import SqlError
from core.sql.options import CREATE_MODEL, EVALUATION_TASKS, check_options
from core.sql.result import SqlResult
from core.sql.statements import parse_create_model, parse_drop_model


def _check_name(name: str, clause: str) -> str:
    try:
        return check_name(name, "model name")
    except InvalidName as e:
        raise SqlError(str(e), clause=clause, hint="Name it with letters, digits, '.', '-' and '_', e.g. sections_tuned.") from None


def _checked(workspace: Path, text: str, tokens):
    stmt = parse_create_model(text, tokens)
    _check_name(stmt.name, f"CREATE MODEL {stmt.name}")
    if stmt.replace and stmt.if_not_exists:
        raise SqlError("OR REPLACE and IF NOT EXISTS contradict each other", clause=f"CREATE MODEL {stmt.name}",
                       hint="Keep one: OR REPLACE re-points the name, IF NOT EXISTS leaves an existing one alone.")
    options = check_options(stmt.options, CREATE_MODEL, "OPTIONS")
    if stmt.select_sql is None:
        tuning_only = [n for n, _ in stmt.options if CREATE_MODEL[n].tuning]
        if tuning_only:
            raise SqlError(f"option `{tuning_only[0]}` is for tuning, and this CREATE MODEL has no AS SELECT",
                           clause=f"OPTIONS {tuning_only[0]}",
                           hint="Add the training rows (AS SELECT … AS prompt, … AS label FROM t) or leave the option out.")
    if not options["endpoint"]:
        raise SqlError("CREATE MODEL needs the base model: OPTIONS (endpoint = …)", clause="OPTIONS endpoint",
                       hint=f"e.g. OPTIONS (endpoint = '{BUNDLED_MODEL}'), a local model folder or a hub id.")
    return stmt, options


def create_model(workspace: Path, text: str, tokens, *, statement: str, wait: bool, allow_dirs=(),
                 on_status: Callable[[dict], None] | None = None) -> SqlResult:
    stmt, options = _checked(workspace, text, tokens)
    existing = models.find(workspace, stmt.name)
    if existing is not None and not stmt.replace:
        if stmt.if_not_exists:
            return SqlResult(statement, "done", message=f"Model {stmt.name} already exists; nothing changed.")
        what = f"tuning run {existing.run_id}" if existing.run_id else f"base model {existing.endpoint}"
        raise SqlError(f"model `{stmt.name}` already exists ({what})", clause=f"CREATE MODEL {stmt.name}",
                       hint=f"Write CREATE OR REPLACE MODEL {stmt.name} to point the name at the new model (an old "
                            "run is kept), or choose another name.")
    endpoint = models.check_endpoint(workspace, options["endpoint"])
    named_task = EVALUATION_TASKS[options["evaluation_task"]] if options["evaluation_task"] else None
    if stmt.select_sql is None:
        models.register(workspace, stmt.name, endpoint=endpoint, run_id=None, task=named_task, statement=statement)
        return SqlResult(statement, "done", message=f"Created model {stmt.name}: base model {endpoint} "
                                                    "(loaded when a statement uses it).")
    with open_database(workspace, allow_dirs) as con:
        try:
            frame = con.execute(stmt.select_sql).df()
        except duckdb.Error as e:
            raise duckdb_error(e, stmt.select_sql, workspace, clause="CREATE MODEL … AS SELECT", con=con) from None
    run_dir, reason, task = tuning.start_tuning(workspace, stmt.name, endpoint, options, frame)
    models.register(workspace, stmt.name, endpoint=endpoint, run_id=run_dir.name, task=task, statement=statement)
    status = runs.read_status(run_dir)
    steps = status.get("max_steps")
    message = (f"Created model {stmt.name}: tuning run {run_dir.name} {status.get('state', 'queued')} "
               f"({steps} step{'s' * (steps != 1)}; {reason.rstrip('.')}).")
    if not wait:
        return SqlResult(statement, "job", message=message, job_dir=str(run_dir))
    final = wait_for(run_dir, statement, on_status)
    if final.get("state") != "succeeded":
        raise SqlError(f"the tuning run of model `{stmt.name}` ({run_dir.name}) {final.get('state')}"
                       + (f": {final['error']}" if final.get("error") else ""), clause=f"CREATE MODEL {stmt.name}",
                       hint=final.get("hint") or f"Its log: studio status {run_dir.name}")
    best = final.get("best_eval_loss")
    return SqlResult(statement, "done", job_dir=str(run_dir),
                     message=f"Created model {stmt.name}: tuning run {run_dir.name} succeeded after "
                             f"{final.get('step')} steps" + (f" (best eval loss {best:.4f})." if best is not None else "."))


def drop_model(workspace: Path, text: str, *, statement: str) -> SqlResult:
    stmt = parse_drop_model(text)
    if stmt.name not in models.read_registry(workspace):
        ref = models.find(workspace, stmt.name)
        if ref is not None:
            raise SqlError(f"`{stmt.name}` is the name of run {ref.run_id}, not a model name made by CREATE MODEL",
                           clause=f"DROP MODEL {stmt.name}",
                           hint="DROP MODEL removes names only; rename or delete runs on the Runs page "
                                "(studio rename / studio delete).")
        if stmt.if_exists:
            return SqlResult(statement, "done", message=f"No model {stmt.name}; nothing changed.")
        names = models.known_names(workspace)
        raise SqlError(f"unknown model `{stmt.name}`", clause=f"DROP MODEL {stmt.name}",
                       hint=(f"The models are: {', '.join(names)}." if names else "There are no models.")
                       + " DROP MODEL IF EXISTS does nothing for a missing one.")
    entry = models.unregister(workspace, stmt.name)
    kept = f"; its tuning run {entry['run_id']} is kept (Runs page)" if entry.get("run_id") else ""
    return SqlResult(statement, "done", message=f"Dropped model {stmt.name}: the name only{kept}.")


def wait_for(job_dir: Path, statement: str, on_status: Callable[[dict], None] | None) -> dict:
    """Wait for a job (a tuning run or a sql job), reporting each change of its status."""
    def update(status: dict, _new: list[dict]) -> None:
        if on_status:
            on_status(progress_event(job_dir, status, statement))
    return jobs.wait(job_dir, update, poll=0.5)


def progress_event(job_dir: Path, status: dict, statement: str) -> dict:
    """What the progress callback receives while a job runs: {"statement", "run_id", "state", "phase",
    "done", "total", "message"}; done/total are steps for tuning, rows for a sql job."""
    tuning_run = status.get("max_steps") is not None and status.get("kind", "tune") == "tune"
    done = status.get("step") if tuning_run else status.get("done")
    total = status.get("max_steps") if tuning_run else status.get("total")
    unit = "steps" if tuning_run else "rows"
    return {"statement": statement, "run_id": Path(job_dir).name, "state": status.get("state"),
            "phase": status.get("phase"), "done": done or 0, "total": total,
            "message": f"{Path(job_dir).name}: {status.get('state')}, {done or 0}/{total or '?'} {unit}"}
