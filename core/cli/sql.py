"""`studio sql`: the SQL workbench on the command line. A statement, or a script of `;`-separated
statements (-f), runs in the workspace's DuckDB database through core.sql; results print as a table,
CSV or JSON. Statements run one after the other: a SELECT whose ML functions became a background job
is waited for (progress on stderr) before the next statement starts, so a later statement can use its
result; CREATE MODEL … AS SELECT returns with its tuning run queued unless --wait. The first failing
statement stops the script: its number, clause and hint go to stderr, exit code 1."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from core import job_queue, jobs
from core.cli.common import fail, workspace
from core.names import FINAL_STATES
from core.sql import engine
from core.sql.result import rows_word

CELL_WIDTH = 48      # a table cell longer than this is cut with "…" (--csv and --json keep every character)
TABLE_ROWS = 200     # rows a table prints; the rest are counted (--csv and --json print them all)


# ---------------------------------------------------------------- reading the script

def script_text(a) -> str:
    """The statement given on the command line, or the script file (-f; `-` reads stdin)."""
    if a.file:
        if a.file == "-":
            return sys.stdin.read()
        path = Path(a.file).expanduser()
        if not path.is_file():
            raise ValueError(f"no script file {path}")
        return path.read_text(encoding="utf-8")
    return a.statement


# ---------------------------------------------------------------- waiting for jobs

def is_sql_job(job_dir: str | Path) -> bool:
    """A job of ML functions (its result comes back as rows), not a tuning run of CREATE MODEL."""
    return jobs.read_job(job_dir).get("kind") == "sql"


def job_progress(status: dict, job_dir: Path) -> str:
    """One stderr line while a job computes or waits for the device."""
    state = status.get("state")
    if state == "queued":
        place = job_queue.position(job_queue.workspace_of(job_dir), job_dir.name)
        if not place:
            return f"{job_dir.name}: starting"
        return f"{job_dir.name} waits for the jobs ahead of it (position {place[0]} of {place[1]})"
    if status.get("max_steps") and status.get("kind", "tune") == "tune":
        return f"{job_dir.name}: step {status.get('step') or 0}/{status['max_steps']}"
    done, total = status.get("done") or 0, status.get("total")
    phase = f"  {status['phase']}" if status.get("phase") else ""
    return f"{job_dir.name}: {done}/{total if total is not None else '?'} rows{phase}"


class ProgressLines:
    """The engine's progress callback (while a model answers rows or it waits for a run): its event's
    message on stderr, each different line once."""

    def __init__(self) -> None:
        self.last = None

    def __call__(self, event: dict) -> None:
        line = event.get("message") or f"{event.get('done') or 0}/{event.get('total') or '?'}"
        if line != self.last:
            print(line, file=sys.stderr, flush=True)
            self.last = line


def finish_job(result: engine.SqlResult) -> engine.SqlResult:
    """A statement that ran as an sql job: wait for it (progress on stderr), then its result from the job
    folder. A failed or cancelled job raises SqlError with the worker's error and hint."""
    job_dir = Path(result.job_dir)
    last = [None]

    def show(status, _new):
        line = job_progress(status, job_dir)
        if line != last[0] and status.get("state") not in FINAL_STATES:
            print(line, file=sys.stderr, flush=True)
            last[0] = line
    jobs.wait(job_dir, show, poll=0.5)
    done = engine.sql_job_result(job_dir)
    done.statement = result.statement
    return done


# ---------------------------------------------------------------- printing results

def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or type(value).__name__ in ("NAType", "NaTType"):
        return "NULL"  # None, NaN, and pandas' missing int and time
    if isinstance(value, float):
        return format(value, ".6g")  # 0.3333333333333333 reads as 0.333333
    text = str(value.tolist() if hasattr(value, "tolist") else value)  # a list column: [1, 2], not [1 2]
    text = " ".join(text.split())  # one line per row: newlines and tabs become spaces
    return text if len(text) <= CELL_WIDTH else text[:CELL_WIDTH - 1] + "…"


def table_text(frame) -> str:
    """A result as an aligned text table: numbers right, text left, long cells cut."""
    columns = [str(c) for c in frame.columns]
    shown = frame.head(TABLE_ROWS)
    cells = [[_cell(v) for v in row] for row in shown.astype(object).itertuples(index=False)]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [str(frame[c].dtype).startswith(("int", "float", "uint", "Int", "Float")) for c in frame.columns]
    fit = lambda text, i: text.rjust(widths[i]) if numeric[i] else text.ljust(widths[i])
    lines = ["  ".join(fit(c, i) for i, c in enumerate(columns)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(fit(v, i) for i, v in enumerate(r)).rstrip() for r in cells]
    if len(frame) > TABLE_ROWS:
        lines.append(f"… {len(frame) - TABLE_ROWS} more rows (--csv or --json prints them all)")
    return "\n".join(lines)


def duration(seconds: float) -> str:
    s = round(seconds)
    return f"{seconds:.1f} s" if seconds < 60 else f"{s // 60} min {s % 60:02d} s" if s < 3600 else \
        f"{s // 3600} h {s % 3600 // 60:02d} min"


def as_json(number: int, result: engine.SqlResult) -> dict:
    """A statement's result for --json: the rows as records (dates as ISO text, NaN as null)."""
    frame = result.frame
    out = {"statement_number": number, "statement": result.statement, "kind": result.kind,
           "message": result.message, "seconds": round(result.seconds, 3), "job_dir": result.job_dir}
    if frame is not None:
        out["columns"] = [str(c) for c in frame.columns]
        out["rows"] = json.loads(frame.to_json(orient="records", date_format="iso", force_ascii=False))
    return out


def print_result(a, number: int, result: engine.SqlResult) -> None:
    """Text: the message line and the table. CSV: the table on stdout, the message on stderr. JSON
    is printed once, at the end."""
    if a.json:
        return
    frame = result.frame
    took = f" · {duration(result.seconds)}" if result.seconds >= 0.05 else ""
    if a.csv:
        if frame is None and result.message:
            print(f"[{number}] {result.message}", file=sys.stderr, flush=True)
        if frame is not None:
            sys.stdout.write(frame.to_csv(index=False))
            sys.stdout.flush()
        return
    if frame is not None:
        print(table_text(frame))
    text = result.message or (f"{rows_word(len(frame))}." if frame is not None else "Done.")
    print(f"{text.rstrip('.')}{took}" if took else text)
    print(flush=True)


def print_error(a, number: int, total: int, e: engine.SqlError) -> None:
    """What failed and where: statement N of M, the clause, the message and what to do next."""
    where = f"statement {number}" + (f" of {total}" if total > 1 else "")
    clause = getattr(e, "clause", None)
    hint = getattr(e, "hint", None)
    lines = [f"error in {where}" + (f", {clause}" if clause else "") + f": {e}"]
    if hint:
        lines.append(f"  hint: {hint}")
    if total > number:
        lines.append(f"  statements {number + 1}–{total} did not run" if total > number + 1
                     else f"  statement {total} did not run")
    print("\n".join(lines), file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the command

def cmd_sql(a) -> int:
    ws = workspace(a)
    try:
        statements = engine.split_statements(script_text(a))
    except engine.SqlError as e:
        print_error(a, getattr(e, "statement", None) or 1, 1, e)
        return 1
    except (ValueError, OSError) as e:
        return fail(str(e))
    if not statements:
        return fail("nothing to run: the script has no statement")
    done: list[dict] = []
    for number, statement in enumerate(statements, 1):
        try:
            results = engine.run_sql(ws, statement, wait=a.wait, allow_dirs=tuple(a.allow_dir),
                                     progress=ProgressLines())
            for result in results:
                if result.kind == "job" and result.job_dir and is_sql_job(result.job_dir):
                    print(f"[{number}] {result.message}", file=sys.stderr, flush=True)
                    result = finish_job(result)
                print_result(a, number, result)
                done.append(as_json(number, result))
        except engine.SqlError as e:
            print_error(a, number, len(statements), e)
            if a.json:
                print(json.dumps({"results": done, "error": {
                    "statement_number": number, "statement": statement, "clause": getattr(e, "clause", None),
                    "message": str(e), "hint": getattr(e, "hint", None)}}, ensure_ascii=False))
            return 1
    if a.json:
        print(json.dumps({"results": done, "error": None}, ensure_ascii=False))
    return 0


def add_parsers(sub, common) -> None:
    q = sub.add_parser("sql", parents=[common], help="run SQL: tables, CREATE MODEL, ML.GENERATE_TEXT, ML.EVALUATE",
                       description="Run SQL in the workspace's DuckDB database: the registered datasets and the "
                                   "samples are tables (NAME_train / NAME_eval); CREATE MODEL tunes a model; "
                                   "ML.GENERATE_TEXT, ML.EVALUATE and ML.TRAINING_INFO use one.")
    what = q.add_mutually_exclusive_group(required=True)
    what.add_argument("statement", nargs="?", help="one statement, or several separated by `;`")
    what.add_argument("-f", "--file", help="a script of `;`-separated statements (`-` reads stdin)")
    out = q.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help='print {"results": [...], "error": ...} at the end')
    out.add_argument("--csv", action="store_true", help="print result tables as CSV (messages go to stderr)")
    q.add_argument("--wait", action="store_true",
                   help="CREATE MODEL … AS SELECT waits for its tuning run (progress on stderr); without it the "
                        "statement returns once the run is queued")
    q.add_argument("--allow-dir", action="append", default=[], metavar="DIR",
                   help="a folder whose files statements may read, besides the workspace and the samples "
                        "(repeatable)")
    q.set_defaults(func=cmd_sql)
