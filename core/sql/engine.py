"""Running SQL: a script's statements, one after the other, each routed by what it is.

  CREATE MODEL / DROP MODEL   core.sql.model_statements (a base model's name, or a tuning run through the
                              job queue)
  ML.GENERATE_TEXT / ML.EVALUATE / ML.TRAINING_INFO in a statement
                              core.sql.ml_statement: inline up to INLINE_ROWS input rows, else a job of kind
                              `sql` that the worker runs through the same code
  anything else               DuckDB, verbatim (after core.sql.safety's checks)

Every statement is checked before it runs (core.sql.safety) and recorded in workspace/sql/history.jsonl.
The first failing statement raises SqlError, with its number in the script; the ones before it stay done."""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from core import runs
from core.config import ConfigError
from core.data import DataError
from core.sql import database, ml_statement, model_statements, models
from core.sql import history as journal
from core.sql import jobs as sql_jobs
from core.sql import statements as parsing
from core.sql.errors import SqlError
from core.sql.ml_calls import has_ml_call
from core.sql.result import SqlResult, rows_word
from core.sql.safety import check_statement, target

__all__ = ["INLINE_ROWS", "SqlError", "SqlResult", "history", "list_models", "list_tables", "run_sql",
           "run_statement", "split_statements", "sql_job_result"]

# ML functions over more input rows than this run as a job (with progress, and leavable); fewer inline.
INLINE_ROWS = 8

Progress = Callable[[dict], None]
sql_job_result = sql_jobs.sql_job_result


def split_statements(text: str) -> list[str]:
    """The `;`-separated statements of a script (a `;` in a string, quoted name or comment does not split)."""
    return parsing.split_statements(text)


def list_tables(workspace: str | Path) -> list[dict]:
    """{"name", "kind": "table" | "view" | "dataset" | "sample", "columns": [...], "rows": n or None}."""
    return database.list_tables(workspace)


def list_models(workspace: str | Path) -> list[dict]:
    """{"name", "endpoint", "run_id", "state", "task", "source"}: SQL model names, then runs by their name."""
    return models.list_models(workspace)


def history(workspace: str | Path, limit: int = 50) -> list[dict]:
    """Newest first: {"statement", "started", "seconds", "state", "message", "rows", "job_dir"}."""
    return journal.history(workspace, limit)


def run_sql(workspace: str | Path, text: str, *, wait: bool = False, allow_dirs=(),
            progress: Progress | None = None) -> list[SqlResult]:
    """Run each statement of `text` in order. wait=True waits for a CREATE MODEL's tuning run and for a
    statement that became a job (then returns its rows). progress(event) is called while a model answers
    or a job runs: event = {"statement", "run_id", "state", "phase", "done", "total", "message"}."""
    workspace = Path(workspace).resolve()
    started, t0 = runs.now_iso(), time.perf_counter()
    try:
        statements = split_statements(text)
    except SqlError as e:  # an unterminated string or comment: nothing ran
        _record(workspace, text.strip(), started, t0, "failed", e.message)
        raise
    results = []
    for number, statement in enumerate(statements, 1):
        started, t0 = runs.now_iso(), time.perf_counter()
        try:
            result = run_statement(workspace, statement, wait=wait, allow_dirs=allow_dirs, progress=progress)
        except SqlError as e:
            e.statement = number
            _record(workspace, statement, started, t0, "failed", e.message)
            raise
        except (DataError, ConfigError) as e:  # a check deeper down that has no SQL clause of its own
            error = SqlError(str(e), statement=number, hint=getattr(e, "hint", None) or "Fix the statement's rows or options.")
            _record(workspace, statement, started, t0, "failed", error.message)
            raise error from None
        result.seconds = time.perf_counter() - t0
        state = "queued" if result.kind == "job" else "succeeded"
        if result.kind == "job" and result.job_dir:
            state = runs.read_status(result.job_dir).get("state") or state
        _record(workspace, statement, started, t0, state, result.message, result.rows, result.job_dir)
        results.append(result)
    return results


def _record(workspace, statement, started, t0, state, message, rows=None, job_dir=None) -> None:
    journal.record(workspace, statement=statement, started=started, seconds=time.perf_counter() - t0, state=state,
                   message=message, rows=rows, job_dir=job_dir)


def run_statement(workspace: str | Path, statement: str, *, wait: bool = False, allow_dirs=(),
                  progress: Progress | None = None, on_rows: Callable[[int, int], None] | None = None,
                  job_dir: Path | None = None, device: str = "auto") -> SqlResult:
    """One statement. `job_dir` is set when a sql job's worker runs it (then ML functions run here,
    whatever the number of rows, and on_rows(done, total) reports them)."""
    workspace = Path(workspace).resolve()
    tokens = parsing.tokenize(statement)
    if not tokens:
        raise SqlError("the statement is empty", clause="statement", hint="Write a statement, e.g. SHOW TABLES.")
    text = check_statement(statement, tokens, workspace, allow_dirs)
    if text != statement:
        tokens = parsing.tokenize(text)
    if on_rows is None and progress is not None:
        def on_rows(done: int, total: int) -> None:
            progress({"statement": statement, "run_id": None, "state": "running", "phase": "generating",
                      "done": done, "total": total, "message": f"{done}/{total} rows"})
    if parsing.is_create_model(tokens):
        return model_statements.create_model(workspace, text, tokens, statement=statement, wait=wait,
                                             allow_dirs=allow_dirs, on_status=progress)
    if parsing.is_drop_model(tokens):
        return model_statements.drop_model(workspace, text, statement=statement)
    if has_ml_call(tokens):
        return _ml(workspace, text, tokens, statement=statement, wait=wait, allow_dirs=allow_dirs, progress=progress,
                   on_rows=on_rows, job_dir=job_dir, device=device)
    return _plain(workspace, text, tokens, statement=statement, allow_dirs=allow_dirs)


def done_message(tokens, count: int | None) -> str:
    """What a statement without rows did, in a sentence."""
    found = target(tokens)
    if found is None:
        return "Done."
    what, name = found
    if what.startswith("CREATE"):
        kind = "view" if "VIEW" in what else "table"
        return f"Created {kind} {name}" + (f" ({rows_word(count)})." if count is not None and kind == "table" else ".")
    if what.startswith("DROP"):
        return f"Dropped {what.split()[-1].lower()} {name}."
    if count is not None and what.split()[0] in ("INSERT", "UPDATE", "DELETE"):
        verb = {"INSERT": "Inserted {n} into", "UPDATE": "Updated {n} of", "DELETE": "Deleted {n} from"}[what.split()[0]]
        return verb.format(n=rows_word(count)) + f" {name}."
    return f"Done ({what.lower()} {name})."


def _plain(workspace: Path, text: str, tokens, *, statement: str, allow_dirs) -> SqlResult:
    with database.open_database(workspace, allow_dirs) as con:
        try:
            cursor = con.execute(text)
            if ml_statement.returns_rows(tokens):
                frame = cursor.df()
                return SqlResult(statement, "rows", frame=frame, message=f"{rows_word(len(frame))}.")
            found = cursor.fetchall()
        except duckdb.Error as e:
            raise database.duckdb_error(e, text if text == statement else None, workspace, con=con) from None
    count = found[0][0] if found and found[0] and isinstance(found[0][0], int) else None
    return SqlResult(statement, "done", message=done_message(tokens, count))


def _ml(workspace: Path, text: str, tokens, *, statement: str, wait: bool, allow_dirs, progress, on_rows,
        job_dir: Path | None, device: str) -> SqlResult:
    prepared = ml_statement.prepare(workspace, text, tokens, allow_dirs)
    if job_dir is not None:
        sql_jobs.wait_for_runs(workspace, prepared.refs)
    inline = job_dir is not None or prepared.rows <= INLINE_ROWS
    ml_statement.check_models(workspace, prepared, can_wait=not inline)
    functions = ", ".join(dict.fromkeys(c.title for c in prepared.calls))
    if not inline:
        folder, state = sql_jobs.submit(workspace, text, prepared.refs, prepared.rows, allow_dirs)
        message = f"{rows_word(prepared.rows)} through {functions}: job {folder.name} {state}."
        if not wait:
            return SqlResult(statement, "job", message=message, job_dir=str(folder))
        model_statements.wait_for(folder, statement, progress)
        result = sql_job_result(folder)
        result.statement = statement
        return result
    rows_wanted = ml_statement.returns_rows(tokens)
    with tempfile.TemporaryDirectory(prefix="studio-sql-") as scratch:
        results = ml_statement.compute(workspace, prepared, Path(job_dir or scratch), on_rows, device)
    frame, count = ml_statement.finish(workspace, prepared, results, rows_wanted, allow_dirs)
    if frame is not None:
        over = f" over {rows_word(prepared.rows)}" if any(c.input_sql for c in prepared.calls) else ""
        return SqlResult(statement, "rows", frame=frame, message=f"{rows_word(len(frame))} ({functions}{over}).")
    return SqlResult(statement, "done", message=done_message(tokens, count))
