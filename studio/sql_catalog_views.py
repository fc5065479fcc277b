"""Beside and below the SQL editor: the tables and models statements can use, and the history of
statements run in the workspace (from the page and `studio sql`) with their state and duration. Lists
come from core.sql; this module lays them out."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import streamlit as st

from core import runs
from core.sql import engine
from studio import ui
from studio.sql_views import BATCH, EDITOR, PENDING, SCRIPT, collect, is_sql_job, one_line, rows_word, took

# ---------------------------------------------------------------- beside the editor: tables and models

TABLE_ICONS = {"sample": ":material/science:", "dataset": ":material/dataset:", "table": ":material/table:",
               "view": ":material/view_column:"}
MODEL_STATES = {"ready": ("green", ":material/check_circle:")}  # a base model: usable at once
TABLE_KINDS = {"sample": "sample", "dataset": "registered dataset", "table": "table", "view": "view"}


def column_text(column) -> str:
    if isinstance(column, dict):
        return f"`{column.get('name')}` :gray[{str(column.get('type') or '').lower()}]".rstrip()
    return f"`{column}`"


def preview_statement(name: str) -> str:
    """SELECT * FROM the table, its name quoted when it is not a plain identifier."""
    if not (name.isidentifier() and name.isascii()):
        name = '"' + name.replace('"', '""') + '"'
    return f"SELECT * FROM {name} LIMIT 20"


def preview(name: str) -> None:
    st.session_state[PENDING] = preview_statement(name)


def tables_panel(ws: Path) -> None:
    """Every table the statements can read: the samples, registered datasets and the user's own, each
    with its columns (and a one-click preview)."""
    try:
        items = engine.list_tables(ws)
    except engine.SqlError as e:  # the database is busy (a job writes to it) or cannot be opened
        st.markdown("**Tables**")
        st.caption(f":material/hourglass: {e} {e.hint or ''}")
        return
    st.markdown(f"**Tables** :gray[· {len(items)}]")
    if not items:
        st.caption("No tables yet.")
    for t in items:
        rows = f" · {t['rows']:,} rows" if isinstance(t.get("rows"), int) else ""
        with st.expander(t["name"], icon=TABLE_ICONS.get(t.get("kind"), ":material/table:")):
            st.caption(f"{TABLE_KINDS.get(t.get('kind'), t.get('kind') or 'table')}{rows}")
            st.markdown("  \n".join(column_text(c) for c in t.get("columns") or []) or ":gray[no columns]")
            st.button("Preview", key=f"sql_preview::{t['name']}", icon=":material/visibility:", on_click=preview,
                      args=(t["name"],), help=f"Runs {preview_statement(t['name'])}")


def models_panel(ws: Path) -> None:
    """The model names statements can use: base models and tuned ones, with their run's state."""
    items = engine.list_models(ws)
    st.markdown(f"**Models** :gray[· {len(items)}]")
    if not items:
        st.caption("None yet: `CREATE MODEL name OPTIONS (endpoint = …)` names a base model; with "
                   "`AS SELECT …` it tunes one.")
    for m in items:
        state = m.get("state") or "ready"
        color, icon = MODEL_STATES.get(state) or ui.STATE_BADGES.get(state, ("gray", ":material/help:"))
        what = f"tuned from {m.get('endpoint')}" if m.get("run_id") else str(m.get("endpoint") or "")
        task = f" · {m['task'].replace('_', ' ')}" if m.get("task") else ""
        st.markdown(f":{color}[{icon}] **{m['name']}** · :{color}[{state}]  \n"
                    f":gray[{one_line(what, 60)}{task}]")


# ---------------------------------------------------------------- history

HISTORY_ROWS = 30


def load(statement: str) -> None:
    st.session_state[EDITOR] = st.session_state[SCRIPT] = statement


def run_again(statement: str) -> None:
    load(statement)
    st.session_state[PENDING] = statement


def show_job_result(item: dict) -> None:
    """A statement of an earlier visit that ran as a job: its rows from the job folder, shown as the
    last script."""
    entry = {"number": 1, "statement": item["statement"], "kind": "job", "message": item.get("message") or "",
             "seconds": item.get("seconds"), "job_dir": item["job_dir"], "frame": None}
    batch = {"statements": [item["statement"]], "next": 1, "waiting_on": None, "error": None, "entries": [entry]}
    collect(batch, entry)
    st.session_state[BATCH] = batch


def history_panel(ws: Path) -> None:
    """Statements run in this workspace, newest first, from the page and the command line: state,
    duration, rows; load one into the editor or run it again; a job's result."""
    items = engine.history(ws, limit=HISTORY_ROWS)
    if not items:
        st.caption("Statements you run are listed here, from this page and from `studio sql`.")
        return
    for i, h in enumerate(items):
        state = h.get("state") or "?"
        if h.get("job_dir") and Path(h["job_dir"]).exists():  # a job's state is its folder's, now
            state = runs.read_status(h["job_dir"]).get("state") or state
        color, icon = ui.STATE_BADGES.get(state, ("gray", ":material/help:"))
        said = h.get("message") or (rows_word(h["rows"]) if isinstance(h.get("rows"), int) else "")
        shown = "" if state == "succeeded" else f" · :{color}[{state}]"
        row = st.columns([0.3, 6, 0.45, 0.45, 0.45], vertical_alignment="center")
        row[0].markdown(f":{color}[{icon}]")
        row[1].markdown(f"`{one_line(h.get('statement') or '', 96)}`  \n"
                        f":gray[{ui_time(h.get('started'))} · {took(h.get('seconds'))}]{shown}"
                        f":gray[{' · ' + one_line(said, 100) if said else ''}]")
        row[2].button("", icon=":material/edit_note:", key=f"sql_load::{i}", on_click=load,
                      args=(h.get("statement") or "",), help="Load into the editor")
        row[3].button("", icon=":material/replay:", key=f"sql_again::{i}", on_click=run_again,
                      args=(h.get("statement") or "",), help="Run it again")
        job = h.get("job_dir") and is_sql_job(h["job_dir"]) and state == "succeeded"
        row[4].button("", icon=":material/table_view:", key=f"sql_show::{i}", on_click=show_job_result, args=(h,),
                      disabled=not job, help="Show the job's result" if job else "Only background jobs keep a result")


def ui_time(iso: str | None) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%d %b %H:%M:%S") if iso else "–"
    except ValueError:
        return str(iso)
