"""The SQL page's parts: the script being run (statement after statement, pausing while a statement's ML
functions compute as a background job and going on when it is done), its messages and result tables
with downloads, and the jobs' live progress. Statements run through core.sql; this module only keeps
the script's place in the session and lays out what core returns."""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import streamlit as st

from core import job_queue, jobs, runs
from core.names import FINAL_STATES
from core.sql import engine
from studio import ui

BATCH = "sql_batch"       # session state: the script run last {statements, entries, next, waiting_on, error}
PENDING = "sql_pending"   # session state: a script to run on this page run (from History or Preview)
EDITOR = "sql_editor"     # the editor's widget key
SCRIPT = "sql_script"     # the editor's text, kept while another page is open (widget state is not)

# The prompt of the sample's 17 sections, as SQL: the instruction (a string literal split over lines with
# ||), then the row's text.
_PROMPT = """CONCAT('Classify the text into one of these categories: admin, comm, database, '
      || 'editors, electronics, fonts, games, graphics, hamradio, mail, math, net, '
      || 'science, sound, text, video, web. Answer with the category name only. Text: ',
      input_text)"""
# The workflow on the sample tables: a base model, a tuned one, text generated and scored, the training curve.
EXAMPLE_SCRIPT = f"""-- A base model, usable at once
CREATE OR REPLACE MODEL base_model OPTIONS (endpoint = 'bundled:SmolLM2-135M-Instruct');

-- A tuned model: the SELECT gives its training rows; it trains in the background
CREATE OR REPLACE MODEL sections_tuned
OPTIONS (endpoint = 'bundled:SmolLM2-135M-Instruct',
         prompt_col = 'prompt', input_label_cols = ['label'],
         max_iterations = 100, learning_rate_multiplier = 1.0,
         data_split_method = 'AUTO_SPLIT', evaluation_task = 'CLASSIFICATION')
AS SELECT
    {_PROMPT} AS prompt,
    output_text AS label
  FROM classification_train;

-- Its answers to held-out rows
SELECT * FROM ML.GENERATE_TEXT(MODEL sections_tuned,
  (SELECT
    {_PROMPT} AS prompt,
    output_text
   FROM classification_eval LIMIT 20),
  STRUCT(0.0 AS temperature, 16 AS max_output_tokens, TRUE AS flatten_json_output));

-- The sections it gets wrong most
SELECT label, f1_score FROM ML.EVALUATE(MODEL sections_tuned,
  (SELECT
    {_PROMPT} AS input_text,
    output_text
   FROM classification_eval),
  STRUCT('classification' AS task_type)) WHERE f1_score < 0.5 ORDER BY f1_score;

-- Loss and eval loss, step by step
SELECT * FROM ML.TRAINING_INFO(MODEL sections_tuned);
"""


# ---------------------------------------------------------------- running a script

def start(text: str) -> None:
    """A new script replaces the last one on the page (its jobs go on; History keeps them)."""
    try:
        statements = engine.split_statements(text)
    except engine.SqlError as e:
        st.session_state[BATCH] = {"statements": [], "entries": [], "next": 0, "waiting_on": None,
                                   "error": error_of(e, getattr(e, "statement", None) or 1, text)}
        return
    st.session_state[BATCH] = {"statements": statements, "entries": [], "next": 0, "waiting_on": None,
                               "error": None if statements else {"number": None, "message": "Nothing to run: the "
                                                                 "editor holds no statement.", "clause": None,
                                                                 "hint": None, "statement": ""}}


def last_statement(text: str) -> str:
    """The script's last statement (the one just written, usually); the whole text when it does not
    split, so start() reports why."""
    try:
        statements = engine.split_statements(text)
    except engine.SqlError:
        return text
    return statements[-1] if statements else text


def error_of(e: Exception, number: int | None, statement: str) -> dict:
    return {"number": number, "statement": statement, "message": str(e), "clause": getattr(e, "clause", None),
            "hint": getattr(e, "hint", None)}


def entry_of(number: int, result: engine.SqlResult) -> dict:
    return {"number": number, "statement": result.statement, "kind": result.kind, "message": result.message,
            "seconds": result.seconds, "job_dir": result.job_dir, "frame": result.frame}


def is_sql_job(job_dir: str | Path | None) -> bool:
    """A job computing ML functions (its rows come back here), not the tuning run of a CREATE MODEL."""
    return bool(job_dir) and jobs.read_job(job_dir).get("kind") == "sql"


def advance(ws: Path, batch: dict) -> None:
    """Run the script's next statements in order, until one becomes a background job whose rows later
    statements may need (the script goes on when it is done), one fails, or the script ends."""
    total = len(batch["statements"])
    bar = st.progress(0.0)
    while batch["next"] < total and not batch["waiting_on"] and not batch["error"]:
        number = batch["next"] + 1
        statement = batch["statements"][batch["next"]]
        head = f"Statement {number} of {total}: {one_line(statement, 90)}"
        bar.progress(batch["next"] / total, text=head)

        def rows_done(event: dict, number=number, head=head) -> None:  # a model answering a few rows, inline
            part = (event.get("done") or 0) / (event.get("total") or 1)
            bar.progress(min((number - 1 + part) / total, 1.0), text=f"{head} · {event.get('message') or ''}")
        try:
            results = engine.run_sql(ws, statement, wait=False, progress=rows_done)
        except engine.SqlError as e:
            batch["error"] = error_of(e, number, statement)
            break
        batch["next"] += 1
        for result in results:
            batch["entries"].append(entry_of(number, result))
            if result.kind == "job" and is_sql_job(result.job_dir):
                batch["waiting_on"] = result.job_dir
    bar.empty()


def collect(batch: dict, item: dict) -> bool:
    """A job entry whose job ended: an ML job's rows (or its error, which stops the script) from the job
    folder; a tuning run's outcome. True when the entry changed."""
    status = runs.read_status(item["job_dir"])
    state = status.get("state")
    if state not in FINAL_STATES:
        return False
    if not is_sql_job(item["job_dir"]):
        name = status.get("name") or Path(item["job_dir"]).name
        item.update(kind="done" if state == "succeeded" else "failed",
                    message=f"Tuning run {name} {state}." + (f" {status['error']}" if status.get("error") else ""))
        return True
    try:
        done = engine.sql_job_result(item["job_dir"])
    except engine.SqlError as e:  # the job failed or was cancelled: the script stops here
        item.update(kind="failed", message=str(e))
        batch["error"] = error_of(e, item["number"], item["statement"])
    else:
        item.update(kind=done.kind, message=done.message, frame=done.frame, seconds=done.seconds)
    if batch.get("waiting_on") == item["job_dir"]:
        batch["waiting_on"] = None
    return True


# ---------------------------------------------------------------- what a script run shows

def one_line(text: str, width: int = 110) -> str:
    """A statement on one line, its leading comment lines left out."""
    lines = str(text).splitlines()
    while len(lines) > 1 and lines[0].lstrip().startswith("--"):
        lines.pop(0)
    text = " ".join(" ".join(lines).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def took(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else ui.fmt_duration(seconds) if seconds >= 10 else f"{seconds:.1f} s"


def rows_word(n: int) -> str:
    return f"{n:,} row{'s' * (n != 1)}"


ICONS = {"done": ":green[:material/check_circle:]", "failed": ":red[:material/error:]"}


def message_line(item: dict) -> str:
    """A statement without rows: what it did and how long it took."""
    what = (item["message"] or "Done.").rstrip(".")
    return f"{ICONS.get(item['kind'], ICONS['done'])} **{item['number']}** · {what} :gray[· {took(item['seconds'])}]"


def show_error(err: dict, total: int) -> None:
    """The failing statement's number, its clause, what is wrong and what to do next."""
    head = f"**Statement {err['number']}**" if err.get("number") else "**The script**"
    clause = f" · `{err['clause']}`" if err.get("clause") else ""
    text = f"{head}{clause}: {err['message']}"
    if err.get("hint"):
        text += f"\n\n{err['hint']}"
    if err.get("number") and total > err["number"]:
        left = total - err["number"]
        text += f"\n\n:gray[{'The statement' if left == 1 else f'The {left} statements'} after it did not run.]"
    st.error(text, icon=":material/error:")


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def result_table(item: dict, key: str) -> None:
    """A statement's rows: its message and time, the statement, the table, CSV and Parquet downloads."""
    frame = item["frame"]
    with st.container(border=True):
        head, csv, parquet = st.columns([6, 1, 1], vertical_alignment="center")
        what = (item["message"] or rows_word(len(frame))).rstrip(".")
        head.markdown(f":green[:material/table_view:] **{item['number']}** · {what} :gray[· {took(item['seconds'])}]"
                      f"  \n:gray[`{one_line(item['statement'], 110)}`]")
        name = f"statement-{item['number']}"
        csv.download_button("CSV", lambda: frame.to_csv(index=False).encode("utf-8"), file_name=f"{name}.csv",
                            mime="text/csv", icon=":material/download:", on_click="ignore", width="stretch",
                            key=f"sql_csv::{key}")
        parquet.download_button("Parquet", lambda: parquet_bytes(frame), file_name=f"{name}.parquet",
                                mime="application/vnd.apache.parquet", icon=":material/download:",
                                on_click="ignore", width="stretch", key=f"sql_parquet::{key}")
        if frame.empty:
            st.caption("No rows.")
        else:
            st.dataframe(frame, hide_index=True, height=min(38 + 35 * len(frame), 420), key=f"sql_df::{key}")


def results(ws: Path, batch: dict) -> None:
    """The last script, statement by statement in order: a line for each that made or changed something,
    a table for each that gave rows, a live card for each computing in the background; then the
    statements still to run, or the error that stopped the script."""
    lines = []
    for i, item in enumerate(batch["entries"]):
        if item["kind"] not in ("job", "rows") and item["frame"] is None:
            lines.append(message_line(item))
            continue
        if lines:
            st.markdown("  \n".join(lines))
            lines = []
        if item["kind"] == "job":
            live_job(ws, i)
        else:
            result_table(item, key=f"{i}::{item['job_dir'] or ''}")
    if lines:
        st.markdown("  \n".join(lines))
    first, last = batch["next"] + 1, len(batch["statements"])
    if batch["waiting_on"] and first <= last:
        which = f"Statement {first} runs" if first == last else f"Statements {first}–{last} run"
        st.caption(f":material/schedule: {which} when the job above is done; you can leave this page and "
                   "come back.")
    if batch["error"]:
        show_error(batch["error"], len(batch["statements"]))


# ---------------------------------------------------------------- jobs, live

def job_progress(item: dict) -> tuple[float, str]:
    """How far a job is, as the bar and its words."""
    job_dir = Path(item["job_dir"])
    status = runs.read_status(job_dir)
    place = job_queue.position(job_queue.workspace_of(job_dir), job_dir.name)
    if place:
        return 0.0, f"Waiting: position {place[0]} of {place[1]} in the queue (one job computes at a time)"
    if status.get("state") == "queued":
        return 0.0, "Starting…"
    if not is_sql_job(job_dir):
        step, total = int(status.get("step") or 0), int(status.get("max_steps") or 0)
        return (step / total if total else 0.0), (f"Tuning: step {step} of {total}" if total else "Starting…")
    done, total = int(status.get("done") or 0), int(status.get("total") or 0)
    phase = f" · {status['phase']}" if status.get("phase") else ""
    return (done / total if total else 0.0), (f"{done} of {total} rows{phase}" if total else "Starting…")


@st.fragment(run_every=3)
def live_job(ws: Path, index: int) -> None:
    """A statement computing in the background: its progress, refreshed. When its job ends, the entry
    takes the outcome (an ML job's rows) and the page runs again, so the script goes on."""
    batch = st.session_state.get(BATCH)
    if not batch or index >= len(batch["entries"]) or batch["entries"][index]["kind"] != "job":
        return
    item = batch["entries"][index]
    if collect(batch, item):
        st.rerun()
    job_dir = Path(item["job_dir"])
    with st.container(border=True):
        head, badge = st.columns([6, 1], vertical_alignment="center")
        head.markdown(f":blue[:material/sync:] **{item['number']}** · {(item['message'] or '').rstrip('.')}  \n"
                      f":gray[`{one_line(item['statement'], 96)}`]")
        with badge:
            ui.status_badge(runs.read_status(job_dir).get("state"))
        fraction, text = job_progress(item)
        st.progress(min(max(fraction, 0.0), 1.0), text=text)
        c1, c2 = st.columns([1, 5], vertical_alignment="center")
        c1.button("Cancel", key=f"sql_cancel::{index}", icon=":material/cancel:", on_click=jobs.cancel,
                  args=(job_dir,), width="stretch")
        c2.caption("It goes on in the background: leave the page if you like; the result shows here and in "
                   "History." if is_sql_job(job_dir) else
                   "Its curves are on the Tune page; ML functions on the model wait for it in the queue.")
