"""Running a statement that holds ML function calls, in three steps:

  prepare   parse the calls, check their options and models, run each input SELECT in DuckDB, check its
            columns, and check the SQL around the calls against empty results of the right shape
            (EXPLAIN), so a typo anywhere fails before a model loads
  compute   each call's result frame (models answer here: inline, or in a worker for a job)
  finish    run the statement with each call replaced by a temporary table of its result

The database is closed while models answer, so the page and other statements can use it meanwhile."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from core.sql import ml_functions, models
from core.sql.database import duckdb_error, open_database
from core.sql.errors import SqlError
from core.sql.ml_calls import MlCall, find_ml_calls, replace_calls
from core.sql.options import EVALUATE, GENERATE_TEXT, check_options, generation_config
from core.sql.statements import words

SCHEMAS = {"GENERATE_TEXT": GENERATE_TEXT, "EVALUATE": EVALUATE, "TRAINING_INFO": {}}
RESULT_PREFIX = "__ml_result_"
# Statements that answer with a count or nothing rather than rows.
DONE_WORDS = ("CREATE", "DROP", "INSERT", "UPDATE", "DELETE", "ALTER", "COPY", "TRUNCATE", "COMMENT", "VACUUM",
              "ANALYZE")


@dataclass
class Prepared:
    calls: list[MlCall]
    refs: list[models.ModelRef]
    options: list[dict]
    tasks: list[str | None]                     # ML.EVALUATE's task_type, resolved
    inputs: list[pd.DataFrame | None] = field(default_factory=list)
    outer: str = ""                             # the statement with each call replaced by its result table

    @property
    def names(self) -> list[str]:
        return [f"{RESULT_PREFIX}{i + 1}" for i in range(len(self.calls))]

    @property
    def rows(self) -> int:
        """Input rows the models answer (ML.TRAINING_INFO reads a file)."""
        return sum(len(f) for f in self.inputs if f is not None)


def _task(call: MlCall, ref: models.ModelRef, options: dict) -> str | None:
    if call.function != "EVALUATE":
        return None
    task = options["task_type"] or ref.task
    if not task:
        raise SqlError(f"{call.title} needs the task of base model `{ref.name}`", clause=f"{call.title} STRUCT task_type",
                       hint=f"Name it: {call.title}(MODEL {ref.name}, (SELECT …), STRUCT('classification' AS task_type)).")
    return task


def prepare(workspace: Path, text: str, tokens, allow_dirs=()) -> Prepared:
    calls = find_ml_calls(text, tokens)
    w = words(tokens, 6)
    if w[:1] == ["CREATE"] and "VIEW" in w:
        raise SqlError("a view cannot hold an ML function's result: it would run the model on every read",
                       clause="CREATE VIEW", hint="Save the result as a table: CREATE TABLE t AS SELECT * FROM ML.…(…).")
    refs = [models.resolve(workspace, c.model, clause=f"{c.title} MODEL {c.model}") for c in calls]
    options = [check_options(c.options, SCHEMAS[c.function], f"{c.title} STRUCT") for c in calls]
    for call, ref, opts in zip(calls, refs, options):
        if call.function == "GENERATE_TEXT":
            generation_config(opts)
        if call.function == "TRAINING_INFO" and ref.run_id is None:
            raise SqlError(f"model `{ref.name}` is a base model: it has no training to show", clause=f"{call.title} MODEL",
                           hint="ML.TRAINING_INFO takes a model made by CREATE MODEL … AS SELECT (or a run).")
    prepared = Prepared(calls=calls, refs=refs, options=options,
                        tasks=[_task(c, r, o) for c, r, o in zip(calls, refs, options)])
    prepared.outer = replace_calls(text, calls, prepared.names)
    with open_database(workspace, allow_dirs) as con:
        for call in calls:
            frame = None
            if call.input_sql is not None:
                try:
                    frame = con.execute(call.input_sql).df()
                except duckdb.Error as e:
                    raise duckdb_error(e, call.input_sql, workspace, clause=f"the input of {call.title}", con=con) from None
                ml_functions.check_input(call, frame)
            prepared.inputs.append(frame)
        for call, name, frame, opts, task in zip(calls, prepared.names, prepared.inputs, options, prepared.tasks):
            con.register(name, ml_functions.result_template(call, frame, opts, task))
        try:
            con.execute(f"EXPLAIN {prepared.outer}")
        except duckdb.Error as e:
            error = duckdb_error(e, None, workspace, clause=f"the statement around {calls[0].title}", con=con)
            gives = "; ".join(f"{c.title} gives {', '.join(map(str, con.execute(f'SELECT * FROM {n}').df().columns))}"
                              for c, n in zip(calls, prepared.names))
            error.hint = f"{error.hint.rstrip('.')}. {gives}." if error.hint else f"{gives}."
            raise error from None
    return prepared


def check_models(workspace: Path, prepared: Prepared, can_wait: bool) -> None:
    for call, ref in zip(prepared.calls, prepared.refs):
        if call.function != "TRAINING_INFO":  # the steps logged so far show while it trains
            models.check_ready(workspace, ref, f"{call.title} MODEL {ref.name}", can_wait)


def compute(workspace: Path, prepared: Prepared, work_dir: Path, progress: Callable[[int, int], None] | None = None,
            device: str = "auto") -> list[pd.DataFrame]:
    """Each call's result; progress(done, total) counts input rows over all calls."""
    loaded = ml_functions.LoadedModels(workspace, device)
    total, offset, results = prepared.rows, 0, []
    for i, (call, ref, frame, opts, task) in enumerate(zip(prepared.calls, prepared.refs, prepared.inputs,
                                                           prepared.options, prepared.tasks)):
        start, size = offset, len(frame) if frame is not None else 0

        def step(done: int, _total: int, start=start, size=size):
            if progress:  # rows of this call, placed after the calls before it
                progress(min(start + done, start + size), total)

        if call.function == "GENERATE_TEXT":
            results.append(ml_functions.generate_text(loaded, ref, frame, opts, step))
        elif call.function == "EVALUATE":
            results.append(ml_functions.evaluate(workspace, ref, frame, task, work_dir / f"evaluate-{i + 1}", step,
                                                 device))
        else:
            results.append(ml_functions.training_info(workspace, ref))
        offset += len(frame) if frame is not None else 0
    return results


def returns_rows(tokens) -> bool:
    return (words(tokens, 1) or [""])[0] not in DONE_WORDS


def finish(workspace: Path, prepared: Prepared, results: list[pd.DataFrame], rows_wanted: bool,
           allow_dirs=()) -> tuple[pd.DataFrame | None, int | None]:
    """Run the statement around the calls on their results: (rows, None) or (None, the count DuckDB gave)."""
    with open_database(workspace, allow_dirs) as con:
        for name, frame in zip(prepared.names, results):
            con.register(name, frame)
        try:
            cursor = con.execute(prepared.outer)
            if rows_wanted:
                return cursor.df(), None
            found = cursor.fetchall()
        except duckdb.Error as e:
            raise duckdb_error(e, None, workspace, clause=f"the statement around {prepared.calls[0].title}", con=con) \
                from None
    count = found[0][0] if found and found[0] and isinstance(found[0][0], int) else None
    return None, count

