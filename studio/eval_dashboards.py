"""The Evaluate page's dashboards: one finished evaluation (its header, or why it failed), headline
numbers with deltas, per-class F1 and confusion matrices for classification, ROUGE for summarization,
the answers of a base-only evaluation, and which mode (label scoring or generation) produced the
numbers. Numbers come from metrics.json as core.evaluate wrote them."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core import runs
from core.config import BUNDLED_MODEL, recorded_eval_mode
from core.names import TASK_NAMES
from studio import cached, charts, eval_views, ui

ROUGE = [("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L"), ("rougeLsum", "ROUGE-Lsum")]
MODES = {"score": ("Label scoring", "blue", ":material/leaderboard:"),
         "constrained": ("Constrained to the label set", "violet", ":material/rule:"),
         "generate": ("Free generation", "gray", ":material/edit_note:")}


def headline(col, label: str, base: float, tuned: float | None, pct: bool = True, inverse: bool = False) -> None:
    fmt = (lambda v: f"{v:.1%}") if pct else (lambda v: f"{v:,.0f}")
    if tuned is None:
        col.metric(label, fmt(base), border=True)
        return
    diff = tuned - base
    delta = f"{diff * 100:+.1f} pts" if pct else f"{diff:+,.0f}"
    unchanged = delta in ("+0.0 pts", "-0.0 pts", "+0", "-0")  # no change as shown: neutral, no arrow
    col.metric(label, fmt(tuned), delta="no change" if unchanged else delta, border=True,
               delta_color="off" if unchanged else "inverse" if inverse else "normal",
               delta_arrow="off" if unchanged else "auto", help=f"Base {fmt(base)} → tuned {fmt(tuned)}")


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
    eval_views.interval_caption(c[0], base, tuned, "accuracy")
    headline(c[1], "Macro F1", base["macro_f1"], tuned and tuned["macro_f1"])
    eval_views.interval_caption(c[1], base, tuned, "macro_f1")
    headline(c[2], "Micro F1", base["micro_f1"], tuned and tuned["micro_f1"])
    headline(c[3], "Off-label answers", base["off_label_count"], tuned and tuned["off_label_count"], pct=False,
             inverse=True)
    st.caption("Values are the tuned model's, with the change from the base model; off-label answers name "
               "no known class." if tuned else "Base model only: pick a tuned run to compare.")
    with st.container(border=True):
        st.markdown("**F1 per class**")
        st.caption("Blue in the Δ column: tuning helped that class; red: it hurt.")
        ui.chart(charts.per_class_f1_figure(base, tuned))
    with st.container(border=True):
        st.markdown("**Confusion matrices**" if tuned else "**Confusion matrix**")
        st.caption("Rows are the true classes, columns the predicted ones; the diagonal is correct.")
        shown = [("Base model", base), ("Tuned", tuned)] if tuned else [("Base model", base)]
        for col, (title, m) in zip(st.columns(len(shown), gap="medium"), shown):
            with col:
                st.markdown(f"*{title}*")
                ui.chart(charts.confusion_figure(m["confusion_matrix"]), key=f"confusion::{title}")
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
        eval_views.interval_caption(col, base, tuned, f"{key}_f1")
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


def predictions_table(preds: pd.DataFrame, task: str) -> None:
    """A base-only evaluation's answers; with a tuned run the regression browser shows them instead."""
    with st.container(border=True):
        st.markdown("**Answers row by row**")
        if preds.empty:
            st.caption("No predictions were saved.")
            return
        preds = eval_views.with_margins(preds)
        order = ["line", "input_text", "reference"]
        order += ["base_label"] if task == "classification" else []
        order += ["base_score", "base", "base_runner_up", "base_margin"]
        st.caption(f"{len(preds)} rows. *line* is the line in the eval file; *score* is "
                   f"{eval_views.SCORE_NAMES.get(task, 'the row score')}.")
        st.dataframe(preds[[c for c in order if c in preds.columns]], hide_index=True, height=380, column_config={
            "line": st.column_config.NumberColumn("line", width="small"),
            "input_text": st.column_config.TextColumn("input", width="large"),
            "base_label": "base label", "base_score": st.column_config.NumberColumn("score", format="%.2f"),
            "base": st.column_config.TextColumn("base answer"), "base_runner_up": "runner-up label",
            **eval_views.MARGIN_COLUMNS})


def mode_badge(metrics: dict) -> None:
    """Which mode produced the numbers (classification only); older evaluations were free generation
    unless constrained."""
    if metrics.get("task") != "classification":
        return
    label, color, icon = MODES[recorded_eval_mode(metrics)]
    st.badge(label, color=color, icon=icon)


def mode_sentence(metrics: dict) -> str:
    """How the answers were made, in words: "Answers: the best-scoring label of 17 (log-likelihood)"."""
    mode = recorded_eval_mode(metrics)
    if metrics.get("task") != "classification":
        return "Answers: free generation (greedy)."
    n = len(metrics.get("labels") or (metrics.get("base") or {}).get("per_label") or [])
    of = f" of {n}" if n else ""
    if mode == "score":
        calibrated = (f", calibrated at {metrics['calibration']:g}: the model's lean towards labels for an empty "
                      "text is partly subtracted") if metrics.get("calibration") else ""
        return (f"Answers: the best-scoring label{of} (log-likelihood{calibrated}); every answer is a label, so "
                "there are no off-label answers.")
    if mode == "constrained":
        return f"Answers: greedy generation restricted to the{' ' + str(n) if n else ''} labels."
    return "Answers: free generation, scored strictly (an answer that is not exactly a label is off-label)."


def show_evaluation(ws: Path, entry: dict) -> None:
    out_dir = Path(entry["dir"])
    status = entry["status"]
    if status.get("state") == "failed":
        st.error(f"**This evaluation failed:** {status.get('error', 'unknown error')}", icon=":material/error:")
        log = runs.log_tail(out_dir, 40)
        if log:
            with st.expander("Worker log (last lines)", expanded=True):
                st.code(log, language=None)
        return
    metrics, preds = cached.read_evaluation(out_dir)
    if not metrics:
        st.info("This evaluation has not finished yet.")
        return
    base, tuned = metrics.get("base"), metrics.get("tuned")
    task = metrics.get("task")
    with st.container(border=True):
        head, badge = st.columns([5, 1], vertical_alignment="center")
        # An evaluation of a run lives in runs/<id>/evals/<eval>: the run is called by its name there.
        who = f"base vs tuned run **{runs.display_name(Path(out_dir).parent.parent)}**" \
            if metrics.get("run_id") else "base model only"
        head.markdown(f"**{TASK_NAMES.get(task, task)}** on `{Path(metrics.get('data', '')).name}` · "
                      f"{metrics.get('rows')} rows · {who}")
        speed = f" · {metrics['rows_per_second']:.2f} answers/s" if metrics.get("rows_per_second") else ""
        created = str(metrics.get("created", ""))[:16].replace("T", " ")
        head.caption(f"Model {metrics.get('model') or BUNDLED_MODEL} · {created}{speed} · "
                     f"`{out_dir}`  \n{mode_sentence(metrics)}")
        with badge:
            ui.status_badge("succeeded")
            mode_badge(metrics)
        counts = [(n, m["evaluation_status"]) for n, m in (("base", base), ("tuned", tuned)) if m]
        failed = [f"{n}: {s['num_total_rows'] - s['num_successful_rows']}" for n, s in counts
                  if s["num_successful_rows"] < s["num_total_rows"]]
        if failed:
            st.warning(f"Some rows produced no answer ({', '.join(failed)}); metrics cover the rest.")
        with st.expander("Prompt template used"):
            st.code(metrics.get("template", ""), language=None, wrap_lines=True)
    if task == "classification":
        classification_dashboard(base, tuned)
    elif task == "summarization":
        summarization_dashboard(base, tuned)
        eval_views.length_chart(preds)
    elif task in eval_views.TASK_SCORES:
        eval_views.score_dashboard(task, base, tuned, headline)
    if tuned:
        eval_views.regression_browser(ws, metrics, preds, out_dir)
    else:
        predictions_table(preds, task)
    eval_views.downloads(out_dir, metrics, preds)
