"""Evaluate: score the base model, and a tuned run on the same rows, as a background job; then read the
dashboards (per-class F1 and confusion matrix, or ROUGE) and the answers row by row."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from core import jobs, runs
from core.config import BUNDLED_MODEL
from core.data import DataError
from studio import charts, ui

EVAL_TASKS = {"classification": "Classification", "summarization": "Summarization"}
ROUGE = [("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L"), ("rougeLsum", "ROUGE-Lsum")]


def new_evaluation(ws: Path) -> None:
    with st.container(border=True):
        st.subheader("New evaluation")
        run, config, model = ui.pick_run_and_model(
            ws, key="ev", run_help="With a run, base and tuned answer the same rows with the run's template.")
        run_id = run["run_id"] if run else None
        train = config.get("train_file") or st.session_state.get("active_dataset")
        default = (config.get("eval_file") or ui.sibling_eval(train) or train
                   or str(ui.SAMPLES_DIR / "classification_eval.jsonl"))
        c1, c2, c3 = st.columns([3, 1, 1])
        with c1:
            path = ui.pick_dataset("Eval data", key=f"ev_data::{run_id}", default=default,
                                   help="Labelled examples the models did not see in training.")
        if path is None:
            return
        if run:  # `studio evaluate` reads the data with the run's columns
            try:
                ds = ui.load_dataset(path, config.get("input_column"), config.get("output_column"))
            except DataError as e:
                ui.show_data_error(e)
                return
        else:  # detected, or mapped by the user (remembered from the Datasets page)
            ds = ui.dataset_with_mapping(path, key=f"ev_map::{path}")
            if ds is None:
                return
        guess = config.get("task") if config.get("task") in EVAL_TASKS else (
            "classification" if ui.looks_like_labels(ds) else "summarization")
        task = c2.selectbox("Task", list(EVAL_TASKS), index=list(EVAL_TASKS).index(guess),
                            format_func=EVAL_TASKS.get, key=f"ev_task::{run_id}::{path}",
                            help="Classification: accuracy and per-class F1. Summarization: ROUGE.")
        limit = c3.number_input("Rows", 1, len(ds), value=min(50, len(ds)), key=f"ev_limit::{path}",
                                help=f"The first N of {len(ds)} rows.")
        answers = int(limit) * (2 if run else 1)
        st.caption(f"{answers} answers to generate ({'base and tuned' if run else 'base model'}) with greedy "
                   "decoding. It runs in the background; you can leave this page.")
        if st.button("Run evaluation", type="primary", icon=":material/analytics:"):
            name = ui.safe_filename(f"{Path(path).stem}-{datetime.now():%Y%m%d-%H%M%S}")
            out_dir = (Path(run["run_dir"]) / "evals" if run else ws / "evals") / name
            args = ["--data", str(Path(path).resolve()), "--task", task, "--limit", str(int(limit)),
                    "--workspace", str(ws), "--input-column", ds.input_column, "--output-column", ds.output_column]
            args += ["--run", run_id] if run else ["--model", model]
            jobs.start_evaluation(out_dir, args)
            st.toast(f"Evaluation {name} started", icon=":material/analytics:")


@st.fragment(run_every=2)
def live_evaluations(dirs: list[str]) -> None:
    finished = None
    for d in dirs:
        status = ui.eval_status(Path(d))
        state = status.get("state")
        with st.container(border=True):
            head, badge = st.columns([5, 1], vertical_alignment="center")
            parent = Path(d).parent.parent
            head.markdown(f"**{Path(d).name}** · {parent.name if parent.parent.name == 'runs' else 'base model'}")
            with badge:
                ui.status_badge(state)
            done, total = int(status.get("done") or 0), int(status.get("total") or 0)
            what = "loading the model" if done == 0 else "generating answers"
            st.progress(done / total if total else 0.0,
                        text=f"{done} of {total} answers · {what}" if total else "starting…")
        if state not in ui.ACTIVE_STATES:
            finished = d
    if finished:
        st.session_state["ev_select_next"] = finished
        st.rerun()


def headline(col, label: str, base: float, tuned: float | None, pct: bool = True, inverse: bool = False) -> None:
    fmt = (lambda v: f"{v:.1%}") if pct else (lambda v: f"{v:,.0f}")
    if tuned is None:
        col.metric(label, fmt(base), border=True)
        return
    diff = tuned - base
    delta = f"{diff * 100:+.1f} pts" if pct else f"{diff:+,.0f}"
    col.metric(label, fmt(tuned), delta=delta, border=True, delta_color="inverse" if inverse else "normal",
               help=f"Base {fmt(base)} → tuned {fmt(tuned)}")


def per_label_table(base: dict, tuned: dict | None) -> pd.DataFrame:
    df = pd.DataFrame(base["per_label"]).rename(columns={"precision": "base precision", "recall": "base recall",
                                                         "f1_score": "base F1"})
    if tuned:
        t = pd.DataFrame(tuned["per_label"]).rename(columns={"precision": "tuned precision",
                                                             "recall": "tuned recall", "f1_score": "tuned F1"})
        df = df.merge(t.drop(columns=["support"]), on="label")
        df["Δ F1"] = df["tuned F1"] - df["base F1"]
    return df[["label", "support"] + [c for c in df.columns if c not in ("label", "support")]]


def classification_dashboard(base: dict, tuned: dict | None) -> None:
    c = st.columns(4)
    headline(c[0], "Accuracy", base["accuracy"], tuned and tuned["accuracy"])
    headline(c[1], "Macro F1", base["macro_f1"], tuned and tuned["macro_f1"])
    headline(c[2], "Micro F1", base["micro_f1"], tuned and tuned["micro_f1"])
    headline(c[3], "Off-label answers", base["off_label_count"], tuned and tuned["off_label_count"], pct=False,
             inverse=True)
    st.caption("Values are the tuned model's, with the change from the base model; off-label answers name "
               "no known class." if tuned else "Base model only: pick a tuned run to compare.")
    left, right = st.columns([2, 3], gap="medium")
    with left.container(border=True, height="stretch"):
        st.markdown("**F1 per class**")
        st.caption("Blue in the Δ column: tuning helped that class; red: it hurt.")
        ui.chart(charts.per_class_f1_figure(base, tuned))
    with right.container(border=True, height="stretch"):
        st.markdown("**Confusion matrix**")
        st.caption("Rows are the true classes, columns the predicted ones; the diagonal is correct.")
        tabs = st.tabs(["Tuned", "Base"] if tuned else ["Base"])
        for tab, m in zip(tabs, [tuned, base] if tuned else [base]):
            with tab:
                ui.chart(charts.confusion_figure(m["confusion_matrix"]))
    with st.container(border=True):
        st.markdown("**Per-label metrics**")
        df = per_label_table(base, tuned)
        fmt = {c: st.column_config.NumberColumn(c, format="%.3f") for c in df.columns if c not in ("label", "support")}
        if "Δ F1" in df:
            fmt["Δ F1"] = st.column_config.NumberColumn("Δ F1", format="%+.3f")
        st.dataframe(df, hide_index=True, column_config=fmt)


def summarization_dashboard(base: dict, tuned: dict | None) -> None:
    c = st.columns(4)
    for col, (key, label) in zip(c, ROUGE):
        headline(col, f"{label} F1", base[f"{key}_f1"], tuned and tuned[f"{key}_f1"])
    st.caption("Values are the tuned model's F1, with the change from the base model." if tuned
               else "Base model only: pick a tuned run to compare.")
    left, right = st.columns([3, 2], gap="medium")
    with left.container(border=True, height="stretch"):
        head, pick = st.columns([2, 3], vertical_alignment="center")
        head.markdown("**ROUGE, base vs tuned**")
        kind = pick.segmented_control("Score", ["f1", "precision", "recall"], default="f1", key="ev_rouge_kind",
                                      format_func=lambda k: "F1" if k == "f1" else k.capitalize(),
                                      label_visibility="collapsed") or "f1"
        ui.chart(charts.rouge_figure(base, tuned, kind))
    with right.container(border=True, height="stretch"):
        st.markdown("**All scores**")
        rows = []
        for key, label in ROUGE:
            for k in ("precision", "recall", "f1"):
                row = {"metric": f"{label} {k if k != 'f1' else 'F1'}", "base": base[f"{key}_{k}"]}
                if tuned:
                    row.update(tuned=tuned[f"{key}_{k}"], delta=tuned[f"{key}_{k}"] - base[f"{key}_{k}"])
                rows.append(row)
        st.dataframe(pd.DataFrame(rows), hide_index=True, height=35 * (len(rows) + 1) + 3, column_config={
            "base": st.column_config.NumberColumn(format="%.3f"), "tuned": st.column_config.NumberColumn(format="%.3f"),
            "delta": st.column_config.NumberColumn("Δ", format="%+.3f")})


def predictions_table(preds: pd.DataFrame, task: str, tuned: bool) -> None:
    with st.container(border=True):
        st.markdown("**Answers row by row**")
        if preds.empty:
            st.caption("No predictions were saved.")
            return
        df = preds.copy()
        if task == "classification":
            df["base ✓"] = df.get("base_label") == df["reference"]
            if tuned:
                df["tuned ✓"] = df.get("tuned_label") == df["reference"]
                outcome = {"All rows": None, "Tuning fixed": (False, True), "Tuning broke": (True, False),
                           "Both wrong": (False, False)}
                choice = st.segmented_control("Show", list(outcome), default="All rows", key="ev_pred_filter",
                                              label_visibility="collapsed") or "All rows"
                if outcome[choice]:
                    b, t = outcome[choice]
                    df = df[(df["base ✓"] == b) & (df["tuned ✓"] == t)]
            order = ["line", "input_text", "reference", "base_label", "base ✓"]
            order += ["tuned_label", "tuned ✓"] if tuned else []
            order += ["base", "tuned"] if tuned else ["base"]
        else:
            order = ["line", "input_text", "reference", "base"] + (["tuned"] if tuned else [])
        st.caption(f"{len(df)} rows. *line* is the line in the eval file; raw answers are on the right.")
        st.dataframe(df[[c for c in order if c in df.columns]], hide_index=True, height=380, column_config={
            "line": st.column_config.NumberColumn("line", width="small"),
            "input_text": st.column_config.TextColumn("input", width="large"),
            "base_label": "base label", "tuned_label": "tuned label",
            "base": st.column_config.TextColumn("base answer"), "tuned": st.column_config.TextColumn("tuned answer")})


def show_evaluation(entry: dict) -> None:
    out_dir = Path(entry["dir"])
    status = entry["status"]
    if status.get("state") == "failed":
        st.error(f"**This evaluation failed:** {status.get('error', 'unknown error')}", icon=":material/error:")
        log = runs.log_tail(out_dir, 40)
        if log:
            with st.expander("Worker log (last lines)", expanded=True):
                st.code(log, language=None)
        return
    metrics, preds = ui.read_evaluation(out_dir)
    if not metrics:
        st.info("This evaluation has not finished yet.")
        return
    base, tuned = metrics.get("base"), metrics.get("tuned")
    task = metrics.get("task")
    with st.container(border=True):
        head, badge = st.columns([5, 1], vertical_alignment="center")
        who = f"base vs tuned run `{metrics['run_id']}`" if metrics.get("run_id") else "base model only"
        head.markdown(f"**{EVAL_TASKS.get(task, task)}** on `{Path(metrics.get('data', '')).name}` · "
                      f"{metrics.get('rows')} rows · {who}")
        head.caption(f"Model {metrics.get('model') or BUNDLED_MODEL} · {metrics.get('created', '')} · `{out_dir}`")
        with badge:
            ui.status_badge("succeeded")
        counts = [(n, m["evaluation_status"]) for n, m in (("base", base), ("tuned", tuned)) if m]
        failed = [f"{n}: {s['num_total_rows'] - s['num_successful_rows']}" for n, s in counts
                  if s["num_successful_rows"] < s["num_total_rows"]]
        if failed:
            st.warning(f"Some rows produced no answer ({', '.join(failed)}); metrics cover the rest.")
        with st.expander("Prompt template used"):
            st.code(metrics.get("template", ""), language=None, wrap_lines=True)
    if task == "classification":
        classification_dashboard(base, tuned)
    else:
        summarization_dashboard(base, tuned)
    predictions_table(preds, task, tuned is not None)
    d1, d2, _ = st.columns([1, 1, 3])
    d1.download_button("metrics.json", (out_dir / "metrics.json").read_bytes(), file_name="metrics.json",
                       icon=":material/download:", width="stretch")
    if (out_dir / "predictions.jsonl").exists():
        d2.download_button("predictions.jsonl", (out_dir / "predictions.jsonl").read_bytes(),
                           file_name="predictions.jsonl", icon=":material/download:", width="stretch")


st.title("Evaluate")
st.caption("Score the base model, and a tuned run on the same rows, against labelled examples: accuracy and "
           "per-class F1 for classification, ROUGE for summarization.")
ws = ui.workspace()
new_evaluation(ws)

evaluations = ui.list_evaluations(ws)
active = [e["dir"] for e in evaluations if e["status"].get("state") in ui.ACTIVE_STATES]
if active:
    st.subheader("In progress")
    live_evaluations(active)

st.subheader("Results")
done = [e for e in evaluations if e["status"].get("state") not in ui.ACTIVE_STATES]
if not done:
    st.info("No finished evaluations yet. Start one above; results appear here.", icon=":material/info:")
else:
    by_dir = {e["dir"]: e for e in done}
    if st.session_state.get("ev_select_next") in by_dir:
        st.session_state["ev_pick"] = st.session_state.pop("ev_select_next")
    ui.seed_choice("ev_pick", list(by_dir), None)
    chosen = st.selectbox("Evaluation", list(by_dir), key="ev_pick", format_func=lambda d: (
        f"{by_dir[d]['name']}  ·  {by_dir[d]['run_id'] or 'base model'}  ·  {by_dir[d]['status'].get('state')}"))
    show_evaluation(by_dir[chosen])
