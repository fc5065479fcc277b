"""The Distill page's compare step: teacher, student and student-before on one eval file (the evaluations
are jobs in the queue, started by core.distill_compare), their progress, and the result: headline numbers,
the Evaluate page's dashboards for three models (per-class F1 heatmap and confusion matrices, ROUGE or the
task's scores) and the speed & size table, the reason to distill."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core import job_queue, runs
from core.config import EVAL_MODE_WORDS, ConfigError, resolve_eval_mode
from core.data import DataError
from core.distill_compare import (
    HEADLINES,
    list_comparisons,
    read_comparison,
    speed_and_size,
    start_comparison,
    student_run,
)
from core.names import ACTIVE_STATES, TASK_NAMES
from studio import cached, charts, distill_charts, eval_views, ui

COMPARE_ROWS = 100  # as the Evaluate page's one-click comparison
ROUGE = [("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L"), ("rougeLsum", "ROUGE-Lsum")]


def default_eval_file(config: dict) -> str | None:
    """The student's own eval file, else the first eval set of the workspace."""
    if config.get("eval_file") and Path(config["eval_file"]).exists():
        return config["eval_file"]
    return next((d["path"] for d in cached.list_datasets() if "eval" in d["name"]), None)


def start_form(ws: Path, run_id: str, config: dict) -> None:
    c1, c2, c3 = st.columns([3, 1, 2], vertical_alignment="bottom")
    with c1:
        path = ui.pick_dataset("Eval data", key=f"dv_cmp_eval::{run_id}", default=default_eval_file(config),
                               help="Labeled rows none of the three learned from.")
    if path is None:
        return
    try:
        ds = cached.load_dataset(path)
    except DataError as e:
        ui.show_data_error(e)
        return
    rows = c2.number_input("Rows", 1, len(ds), value=min(COMPARE_ROWS, len(ds)), key=f"dv_cmp_rows::{run_id}::{path}",
                           help=f"The first N of {len(ds)} rows.")
    if c3.button("Compare teacher, student and before", type="primary", icon=":material/compare_arrows:",
                 key=f"dv_compare::{run_id}", width="stretch"):
        try:
            start_comparison(ws, run_id, path, limit=int(rows))
        except DataError as e:
            ui.show_data_error(e)
        except (ConfigError, ValueError, FileNotFoundError) as e:
            st.error(f"**Cannot compare:** {e}", icon=":material/error:")
        else:
            st.session_state.pop(f"dv_cmp_pick::{run_id}", None)  # show the new one
    task = config.get("task") or "classification"
    st.caption(f"Two evaluations in the queue: the student with its base model on the same rows, and the "
               f"teacher; {TASK_NAMES.get(task, task).lower()}, answers: {EVAL_MODE_WORDS[resolve_eval_mode(task)]}.")


def compare_step(ws: Path, run_id: str | None) -> None:
    if run_id is None:
        st.caption("Start a student in step 3; once it has finished, compare it here with its teacher and with "
                   "the model it started from.")
        return
    run_dir, config = student_run(ws, run_id)
    if not runs.has_adapter(run_dir):
        st.caption(f"When the student run **{runs.display_name(run_dir)}** has finished, compare it here with its "
                   "teacher and with the model it started from.")
        return
    start_form(ws, run_id, config)
    comparisons = list_comparisons(ws, run_id)
    if not comparisons:
        st.info("No comparison yet: choose the eval data and press **Compare**.", icon=":material/info:")
        return
    by_id = {c["id"]: c for c in comparisons}
    key = f"dv_cmp_pick::{run_id}"
    ui.seed_choice(key, list(by_id), comparisons[0]["id"])
    if len(comparisons) > 1:
        st.selectbox("Comparison", list(by_id), key=key, format_func=lambda i: (
            f"{Path(by_id[i]['eval_file']).name} · {by_id[i].get('limit') or 'all'} rows · {by_id[i]['state']} · "
            f"{str(by_id[i]['created'])[:16].replace('T', ' ')}"))
    entry = by_id[st.session_state[key]]
    if entry["state"] in ACTIVE_STATES:
        live_progress(ws, run_id, entry["id"])
    elif entry["state"] != "succeeded":
        for role, j in entry["jobs"].items():
            status = j["status"]
            if status.get("state") != "succeeded":
                st.error(f"**The {role} evaluation {status.get('state')}:** {status.get('error') or ''}"
                         + (f"\n\n{status['hint']}" if status.get("hint") else ""), icon=":material/error:")
    else:
        show_comparison(read_comparison(ws, run_id, entry["id"]))


@st.fragment(run_every=2)
def live_progress(ws: Path, run_id: str, comparison_id: str) -> None:
    entry = next(c for c in list_comparisons(ws, run_id) if c["id"] == comparison_id)
    for role, j in entry["jobs"].items():
        status, name = j["status"], Path(j["dir"]).name
        done, total = int(status.get("done") or 0), int(status.get("total") or 0)
        place = job_queue.position(ws, name)
        what = {"student": "Student and student-before", "teacher": "Teacher"}[role]
        text = (f"{what}: waiting, position {place[0]} of {place[1]} in the queue" if place
                else f"{what}: {status.get('state')}" if status.get("state") not in ACTIVE_STATES
                else f"{what}: {done} of {total} answers" if total else f"{what}: loading the model…")
        st.progress(done / total if total else 0.0, text=text)
    if entry["state"] not in ACTIVE_STATES:
        st.rerun()


def pct(v) -> str:
    return "–" if v is None else f"{v:.1%}"


def headline_cards(comparison: dict) -> None:
    models, summary = comparison["models"], comparison["summary"]
    heads = HEADLINES.get(comparison["task"]) or []
    key, label = heads[0] if heads else (None, "Score")
    cols = st.columns(len(models) + 1)
    for col, m in zip(cols, models):
        delta, vs = None, summary.get("vs_teacher")
        if m["role"] == "student" and vs is not None:
            delta = f"{vs * 100:+.1f} pts vs teacher"
            if delta.startswith(("+0.0 ", "-0.0 ")):  # no change as shown: neutral, no arrow
                delta = "level with the teacher"
        col.metric(f"{distill_charts.CARD_NAMES[m['role']]} · {label}", pct(m["headline"].get(key)), delta=delta,
                   border=True, help=f"{m['role_name']}: {m['name']}",
                   delta_color="off" if delta == "level with the teacher" else "normal",
                   delta_arrow="off" if delta == "level with the teacher" else "auto")
    speed = summary.get("speed_vs_teacher")
    cols[-1].metric("Student speed", f"{speed:.2f}× teacher" if speed else "–", border=True,
                    help="The student's answers per second over the teacher's, on the same rows.")


def quality_table(comparison: dict) -> pd.DataFrame:
    heads = HEADLINES.get(comparison["task"]) or []
    return pd.DataFrame([{"model": m["role_name"], "what": m["name"],
                          **{label: m["headline"].get(k) for k, label in heads},
                          "rows answered": m["metrics"]["evaluation_status"]["num_successful_rows"]}
                         for m in comparison["models"]])


def speed_size_table(comparison: dict) -> pd.DataFrame:
    return pd.DataFrame([{"model": m["role_name"], "what": m["name"], **speed_and_size(m)}
                         for m in comparison["models"]])


def show_comparison(comparison: dict) -> None:
    task, models = comparison["task"], comparison["models"]
    st.caption(f"`{Path(comparison['eval_file']).name}` · {comparison.get('limit') or 'all'} rows · "
               f"{TASK_NAMES.get(task, task)} · answers: {EVAL_MODE_WORDS[resolve_eval_mode(task, comparison['mode'])]}"
               f" · {str(comparison['created'])[:16].replace('T', ' ')}")
    headline_cards(comparison)
    quality, speed = st.columns([3, 2], gap="medium")
    with quality.container(border=True, height="stretch"):
        st.markdown("**Quality**")
        df = quality_table(comparison)
        st.dataframe(df, hide_index=True, column_config={
            c: st.column_config.NumberColumn(c, format="%.3f") for c in df.columns
            if c not in ("model", "what", "rows answered")})
    with speed.container(border=True, height="stretch"):
        st.markdown("**Answers per second**")
        ui.chart(distill_charts.speed_figure(models), key="dv_speed_chart")
    with st.container(border=True):
        st.markdown("**Speed and size** · why distill: the same task from a cheaper model")
        st.dataframe(speed_size_table(comparison), hide_index=True)
        st.caption("Answers per second of answering (model loading left out). "
                   + ("Student and student-before answered in one evaluation: theirs is the joint rate. "
                      if any(m.get("speed_shared") for m in models) else "")
                   + "Size on disk: the base model's weights, plus the LoRA adapter of a tuned run. Peak memory: "
                     "the evaluation process's.")
    if task == "classification":
        with st.container(border=True):
            st.markdown("**F1 per class**")
            st.caption("Blue in the Δ column: the student beats its teacher on that class; red: it falls short.")
            ui.chart(distill_charts.per_class_f1_figure(models), key="dv_f1_heatmap")
        with st.expander("Confusion matrices", icon=":material/grid_on:"):
            for col, m in zip(st.columns(len(models), gap="medium"), models):
                with col:
                    st.markdown(f"*{m['role_name']}*")
                    ui.chart(charts.confusion_figure(m["metrics"]["confusion_matrix"]), key=f"dv_confusion::{m['role']}")
    elif task == "summarization":
        with st.container(border=True):
            head, pick = st.columns([2, 3], vertical_alignment="center")
            head.markdown("**ROUGE**")
            kind = pick.segmented_control("Score", ["f1", "precision", "recall"], default="f1", key="dv_rouge_kind",
                                          format_func=lambda k: "F1" if k == "f1" else k.capitalize(),
                                          label_visibility="collapsed") or "f1"
            ui.chart(distill_charts.metric_bars_figure(models, [(f"{k}_{kind}", n) for k, n in ROUGE]),
                     key="dv_rouge")
    elif task in eval_views.TASK_SCORES:
        with st.container(border=True):
            st.markdown("**Scores** · error bars are bootstrap 95% intervals")
            ui.chart(distill_charts.metric_bars_figure(models, eval_views.TASK_SCORES[task]), key="dv_scores")
    student_eval = next((m["evaluation"] for m in models if m["role"] == "student"), None)
    if student_eval and st.button("Row by row: what tuning fixed and broke (Evaluate)", icon=":material/analytics:",
                                  key="dv_open_eval"):
        st.session_state["ev_select_next"] = student_eval  # the Evaluate page opens on it
        st.switch_page("app_pages/evaluate.py")
