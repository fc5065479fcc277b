"""Evaluate: score the base model, and a tuned run on the same rows, as a background job; then read the
dashboards (per-class F1 and confusion matrix, ROUGE, QA or text-generation scores, each with bootstrap
95% intervals) and the regression browser: what tuning fixed and broke, row by row."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from core import jobs, runs
from core.config import BUNDLED_MODEL
from core.data import DataError
from studio import charts, eval_views, ui

EVAL_TASKS = {"classification": "Classification", "summarization": "Summarization",
              "question_answering": "Question answering", "text_generation": "Text generation"}
TASK_HELP = ("Classification: accuracy and per-class F1. Summarization: ROUGE. Question answering: exact match "
             "and token F1. Text generation: BLEU-4 and ROUGE-L.")
ROUGE = [("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L"), ("rougeLsum", "ROUGE-Lsum")]
COMPARE_ROWS = 100
MODES = {"constrained": ("Constrained to the label set", "violet", ":material/rule:"),
         "free": ("Free generation", "gray", ":material/edit_note:")}


def start_evaluation(ws: Path, run: dict | None, model: str, path: str, ds, task: str, limit: int,
                     constrained: bool) -> None:
    name = ui.safe_filename(f"{Path(path).stem}-{datetime.now():%Y%m%d-%H%M%S}")
    out_dir = (Path(run["run_dir"]) / "evals" if run else ws / "evals") / name
    args = ["--data", str(Path(path).resolve()), "--task", task, "--limit", str(int(limit)),
            "--workspace", str(ws), "--input-column", ds.input_column, "--output-column", ds.output_column]
    args += ["--run", run["run_id"]] if run else ["--model", model]
    args += ["--constrained"] if constrained and task == "classification" else []
    jobs.start_evaluation(out_dir, args)
    st.toast(f"Evaluation {name} started", icon=":material/analytics:")


def compare_on_eval_set(ws: Path, run: dict, config: dict, model: str) -> None:
    """The one-click action for a selected run: base vs tuned on the run's own eval file, its task and
    template, the first COMPARE_ROWS rows, free generation (as the reference ML.EVALUATE does)."""
    path = config.get("eval_file") or ui.sibling_eval(config.get("train_file"))
    task = config.get("task") if config.get("task") in EVAL_TASKS else "summarization"
    if not path or not Path(path).exists():
        st.info("This run has no eval file: choose the data to evaluate on below.", icon=":material/info:")
        return
    try:
        ds = ui.load_dataset(path, config.get("input_column"), config.get("output_column"))
    except DataError as e:
        ui.show_data_error(e)
        return
    limit = min(COMPARE_ROWS, len(ds))
    c1, c2 = st.columns([1, 3], vertical_alignment="center")
    if c1.button("Compare on eval set", type="primary", icon=":material/compare_arrows:", key="ev_compare",
                 width="stretch"):
        start_evaluation(ws, run, model, path, ds, task, limit, constrained=False)
    c2.caption(f"Base and tuned answer the first **{limit}** of {len(ds)} rows of `{Path(path).name}` "
               f"({EVAL_TASKS[task].lower()}, the run's template, greedy decoding). It runs in the background; "
               "you can leave this page.")


def new_evaluation(ws: Path) -> None:
    with st.container(border=True):
        st.subheader("New evaluation")
        run, config, model = ui.pick_run_and_model(
            ws, key="ev", run_help="With a run, base and tuned answer the same rows with the run's template.")
        if run:
            compare_on_eval_set(ws, run, config, model)
        box = st.expander("Other data or settings", icon=":material/tune:") if run else st.container()
        with box:
            custom_evaluation(ws, run, config, model)


def custom_evaluation(ws: Path, run: dict | None, config: dict, model: str) -> None:
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
                        format_func=EVAL_TASKS.get, key=f"ev_task::{run_id}::{path}", help=TASK_HELP)
    limit = c3.number_input("Rows", 1, len(ds), value=min(50, len(ds)), key=f"ev_limit::{path}",
                            help=f"The first N of {len(ds)} rows.")
    constrained = False
    if task == "classification":
        constrained = st.toggle(
            "Constrained to the label set", key=f"ev_constrained::{run_id}",
            help="Answers can only be one of the labels (the decoder is restricted to them): never off-label, "
                 "and faster. Off: the models answer freely, as the reference workflow evaluates them.")
    answers = int(limit) * (2 if run else 1)
    st.caption(f"{answers} answers to generate ({'base and tuned' if run else 'base model'}) with greedy "
               f"decoding{', constrained to the labels' if constrained else ''}. It runs in the background; "
               "you can leave this page.")
    if st.button("Run evaluation", type="secondary" if run else "primary", icon=":material/analytics:"):
        start_evaluation(ws, run, model, path, ds, task, int(limit), constrained)


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
        order = ["line", "input_text", "reference"]
        order += ["base_label"] if task == "classification" else []
        order += ["base_score", "base"]
        st.caption(f"{len(preds)} rows. *line* is the line in the eval file; *score* is "
                   f"{eval_views.SCORE_NAMES.get(task, 'the row score')}.")
        st.dataframe(preds[[c for c in order if c in preds.columns]], hide_index=True, height=380, column_config={
            "line": st.column_config.NumberColumn("line", width="small"),
            "input_text": st.column_config.TextColumn("input", width="large"),
            "base_label": "base label", "base_score": st.column_config.NumberColumn("score", format="%.2f"),
            "base": st.column_config.TextColumn("base answer")})


def mode_badge(metrics: dict) -> None:
    """Which decoding produced the numbers (classification only); older evaluations were all free."""
    if metrics.get("task") != "classification":
        return
    label, color, icon = MODES.get(metrics.get("mode") or "free", MODES["free"])
    st.badge(label, color=color, icon=icon)


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
    metrics, _ = ui.read_evaluation(out_dir)
    if not metrics:
        st.info("This evaluation has not finished yet.")
        return
    preds = ui.scored_predictions(out_dir)
    base, tuned = metrics.get("base"), metrics.get("tuned")
    task = metrics.get("task")
    with st.container(border=True):
        head, badge = st.columns([5, 1], vertical_alignment="center")
        who = f"base vs tuned run `{metrics['run_id']}`" if metrics.get("run_id") else "base model only"
        head.markdown(f"**{EVAL_TASKS.get(task, task)}** on `{Path(metrics.get('data', '')).name}` · "
                      f"{metrics.get('rows')} rows · {who}")
        speed = f" · {metrics['rows_per_second']:.2f} answers/s" if metrics.get("rows_per_second") else ""
        head.caption(f"Model {metrics.get('model') or BUNDLED_MODEL} · {metrics.get('created', '')}{speed} · "
                     f"`{out_dir}`")
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


st.title("Evaluate")
st.caption("Score the base model, and a tuned run on the same rows, against labelled examples: accuracy and "
           "per-class F1 for classification, ROUGE for summarization, exact match and F1 for question answering, "
           "BLEU and ROUGE-L for text generation; then see row by row what tuning fixed and broke.")
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
    show_evaluation(ws, by_dir[chosen])
