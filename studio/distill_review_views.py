"""The Distill page's review step: what the teacher wrote, row by row, with the flags that make a row
doubtful (failed, empty, off the label set, duplicated, disagreeing with the given label, low margin, no
rationale where one was asked) and the teacher's rationale when the pass asked for one;
filters over them; the rule that drops flagged rows; keep or drop decisions for chosen rows; and doubtful
rows sent to a labeling queue. Every decision is stored by core.distill_review in the pass's folder."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd
import streamlit as st

from core import preferences
from core.distill_review import FLAGS, UNUSABLE, apply_queue_labels, decide, read_review, send_to_queue
from studio import ui

DECISION_NAMES = {"keep": "Kept", "drop": "Dropped", "waiting": "Waiting for a label"}


def flag_name(flag: str) -> str:
    return flag.replace("_", " ")


def _say(kind: str, text: str) -> None:
    ui.say(kind, text, key="dv_review_message")


def _set_rule(job_dir: Path, key: str) -> None:
    """The drop rule changed: store it (failed and empty rows stay dropped whatever it says)."""
    decide(job_dir, drop_flags=list(st.session_state[key]))


def _set_margin(job_dir: Path, key: str) -> None:
    decide(job_dir, low_margin=float(st.session_state[key]))


def _decide_rows(job_dir: Path, key: str, choice: str | None) -> None:
    rows = [int(r) for r in st.session_state.get(key) or []]
    if not rows:
        _say("warning", "Choose rows first (in the table or the Rows box).")
        return
    try:
        decide(job_dir, decisions={r: choice for r in rows})
    except ValueError as e:
        _say("error", str(e))
        return
    st.session_state[key] = []
    what = {"keep": "kept", "drop": "dropped", None: "back to the rule"}[choice]
    _say("success", f"{len(rows)} row{'s' * (len(rows) != 1)} {what}.")


def _send(ws: Path, job_dir: Path, key: str, queue_key: str) -> None:
    rows = [int(r) for r in st.session_state.get(key) or []]
    queue = st.session_state.get(f"{queue_key}_new") if st.session_state.get(queue_key) == ui.NEW_QUEUE \
        else st.session_state.get(queue_key)
    try:
        added = send_to_queue(ws, job_dir, rows, str(queue or "").strip())
    except ValueError as e:
        _say("error", f"**Could not send the rows:** {e}")
        return
    st.session_state[key] = []
    _say("success", f"{added} row{'s' * (added != 1)} sent to labeling queue **{queue}**: they wait out of "
                    "training until labeled on the Preferences page.")


def _apply_labels(ws: Path, job_dir: Path) -> None:
    settled = apply_queue_labels(ws, job_dir)
    _say("success" if settled else "info", f"{settled} row{'s' * (settled != 1)} settled by their labels."
         if settled else "No labels yet: the rows wait until they are labeled on the Preferences page.")


def _select_rows(table_key: str, rows_key: str, shown: list[int]) -> None:
    """Rows picked in the table become the Rows box's choice."""
    picked = getattr(getattr(st.session_state.get(table_key), "selection", None), "rows", None)
    if picked is None and isinstance(st.session_state.get(table_key), dict):
        picked = (st.session_state[table_key].get("selection") or {}).get("rows")
    st.session_state[rows_key] = [shown[i] for i in picked or [] if i < len(shown)]


def review_table(rows: list[dict], rationale: bool = False) -> pd.DataFrame:
    """One line a row; with `rationale` (the pass asked for them) the teacher's rationale after its answer,
    or why there is none."""
    columns = ["row", "source", "prompt", "answer", *(["rationale"] * rationale), "given", "margin", "flags",
               "decision"]
    return pd.DataFrame([{"row": r["row"], "source": r.get("source"), "prompt": r.get("prompt"),
                          "answer": r.get("training_answer") if r.get("training_answer") is not None else r.get("answer"),
                          "rationale": r.get("rationale") or (f"({r['rationale_error']})" if r.get("rationale_error")
                                                              else None),
                          "given": r.get("given"), "margin": r.get("margin"),
                          "flags": ", ".join(flag_name(f) for f in r["flags"]),
                          "decision": DECISION_NAMES[r["decision"]]} for r in rows], columns=columns)


def shown_flags(summary: dict) -> list[str]:
    """The flags this pass can raise: no rationale only where rationales were asked."""
    return [f for f in FLAGS if f != "no_rationale" or summary.get("rationale")]


def filtered(rows: list[dict], flags: list[str], decision: str | None) -> list[dict]:
    """Rows carrying any of `flags` (all rows when none is chosen) with the chosen decision."""
    return [r for r in rows if (not flags or any(f in r["flags"] for f in flags))
            and (decision in (None, "all") or r["decision"] == decision)]


def review_step(ws: Path, job_dir: Path, summary: dict) -> None:
    ui.show_message("dv_review_message")
    rows, counts, pid = summary["rows"], summary["counts"], job_dir.name
    c = st.columns(4)
    c[0].metric("Answered rows", f"{len(rows):,}", border=True)
    c[1].metric("Kept for the student", f"{summary['kept']:,}", border=True)
    c[2].metric("Dropped", f"{summary['dropped']:,}", border=True)
    c[3].metric("Waiting for a label", f"{summary['waiting']:,}", border=True,
                help="Sent to a labeling queue: out of training until labeled.")
    stored = read_review(job_dir)
    rule_key, margin_key = f"dv_rule::{pid}", f"dv_margin::{pid}"
    c1, c2 = st.columns([3, 1])
    st.session_state.setdefault(rule_key, [f for f in summary["drop_flags"] if f not in UNUSABLE])
    c1.multiselect("Drop rows flagged", [f for f in shown_flags(summary) if f not in UNUSABLE], key=rule_key,
                   format_func=flag_name, on_change=_set_rule, args=(job_dir, rule_key),
                   help="Failed and empty answers are always dropped: there is nothing to learn from them.")
    c2.number_input("Low margin below (nats)", 0.0, 20.0, step=0.1, key=margin_key,
                    value=float(stored["low_margin"]), on_change=_set_margin, args=(job_dir, margin_key),
                    help="Classification: the best label beat the runner-up by less than this (log-likelihood).")

    f1, f2 = st.columns([3, 2], vertical_alignment="bottom")
    flags = f1.pills("Show rows flagged", shown_flags(summary), selection_mode="multi", key=f"dv_filter::{pid}",
                     format_func=lambda f: f"{flag_name(f)} ({counts.get(f, 0)})",
                     help="\n".join(f"- **{flag_name(f)}**: {why}" for f, why in FLAGS.items())) or []
    decision = f2.segmented_control("Decision", ["all", *DECISION_NAMES], default="all", key=f"dv_decision::{pid}",
                                    format_func=lambda d: "All" if d == "all" else DECISION_NAMES[d])
    shown = filtered(rows, flags, decision)
    rows_key, table_key = f"dv_rows::{pid}", f"dv_table::{pid}"
    ids = [r["row"] for r in shown]
    st.dataframe(review_table(shown, bool(summary.get("rationale"))), hide_index=True, key=table_key,
                 selection_mode="multi-row",
                 on_select=partial(_select_rows, table_key, rows_key, ids),  # st.dataframe takes no args=
                 height=min(420, 35 * (len(shown) + 1) + 3), column_config={
                     "row": st.column_config.NumberColumn("row", width="small"),
                     "prompt": st.column_config.TextColumn("prompt", width="large"),
                     "answer": st.column_config.TextColumn("teacher's answer", width="medium"),
                     "rationale": st.column_config.TextColumn("teacher's rationale", width="large"),
                     "given": st.column_config.TextColumn("given label", width="small"),
                     "margin": st.column_config.NumberColumn("margin", format="%.2f", width="small")})
    st.caption(f"{len(shown)} of {len(rows)} rows shown. Select rows in the table (or in the box below), then "
               "keep, drop or send them to a labeling queue.")
    # choices no longer shown (another filter) leave the box; the stored decisions stay
    st.session_state[rows_key] = [r for r in st.session_state.get(rows_key) or [] if r in ids]
    by_row = {r["row"]: r for r in shown}
    st.multiselect("Rows", ids, key=rows_key, placeholder="Rows to keep, drop or send",
                   format_func=lambda i: f"{i} · {by_row[i].get('answer')} · {str(by_row[i].get('prompt'))[:50]}")
    b = st.columns(4)
    b[0].button("Keep", icon=":material/check:", key=f"dv_keep::{pid}", on_click=_decide_rows,
                args=(job_dir, rows_key, "keep"), width="stretch")
    b[1].button("Drop", icon=":material/block:", key=f"dv_drop::{pid}", on_click=_decide_rows,
                args=(job_dir, rows_key, "drop"), width="stretch")
    b[2].button("Back to the rule", icon=":material/undo:", key=f"dv_undo::{pid}", on_click=_decide_rows,
                args=(job_dir, rows_key, None), width="stretch", help="Forget your own decision for these rows.")
    if stored["sent"]:  # rows in a labeling queue: their labels can be taken
        b[3].button("Take the labels given", icon=":material/sync:", key=f"dv_apply::{pid}", width="stretch",
                    on_click=_apply_labels, args=(ws, job_dir),
                    help="Rows labeled in their queue learn the chosen answer and are kept.")
    with st.expander("Send doubtful rows to a labeling queue", icon=":material/thumbs_up_down:"):
        st.caption("Each row becomes a pair to label blind on the Preferences page: the teacher's answer against "
                   "the given label (where they disagree) or the runner-up label. The row waits out of training "
                   "until it is labeled; then **Take the labels given** makes the chosen answer its answer.")
        queue_key = f"dv_queue::{pid}"
        # no labeling database yet: no queues, and drawing the page must not create one
        queues = preferences.list_queues(ws) if preferences.db_path(ws).exists() else []
        ui.queue_target(queue_key, [q["name"] for q in queues], f"review-{pid}"[:64])
        st.button("Send the chosen rows", icon=":material/send:", key=f"dv_send::{pid}", on_click=_send,
                  args=(ws, job_dir, rows_key, queue_key))
