"""Evaluate: score the base model, and a tuned run on the same rows, as a background job; then read the
dashboards (per-class F1 and confusion matrix, ROUGE, QA or text-generation scores, each with bootstrap
95% intervals) and the regression browser: what tuning fixed and broke, row by row."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import inventory, job_queue, jobs
from core.config import ConfigError, EvalConfig, resolve_eval_mode
from core.data import DataError
from core.evaluate import eval_status as core_eval_status
from core.names import ACTIVE_STATES, EVAL_TASKS, TASK_NAMES
from studio import cached, eval_dashboards, ui

TASK_HELP = ("Classification: accuracy and per-class F1. Summarization: ROUGE. Question answering: exact match "
             "and token F1. Text generation: BLEU-4 and ROUGE-L.")
COMPARE_ROWS = 100
# How classification answers are made (EvalConfig.mode), in plain words.
MODE_CHOICES = {"score": "Score the labels", "generate": "Let the model write", "constrained": "Write, labels only"}
MODE_HELP = ("**Score the labels** (fast; every answer is a label): each label is scored by how likely the model "
             "finds it as the answer, less a share of how much it favours that label for an empty text (so a "
             "label said by habit does not win by default), and the best one is the answer. **Let the model "
             "write** (slower; shows answers outside the labels): the model answers in its own words, scored "
             "strictly. **Write, labels only**: the model writes, but can only write a label.")
MODE_CAPTIONS = {"score": "each label scored by log-likelihood, the best one is the answer",
                 "generate": "greedy decoding", "constrained": "greedy decoding restricted to the labels"}


def start_evaluation(ws: Path, run: dict | None, model: str, path: str, ds, task: str, limit: int,
                     mode: str = "auto") -> None:
    """An evaluation job into the device's queue (it waits while a run trains, then starts by itself)."""
    try:
        cfg = EvalConfig(data=str(Path(path).resolve()), task=task, run_id=run["run_id"] if run else None,
                         model=model, limit=int(limit), input_column=ds.input_column,
                         output_column=ds.output_column, mode=mode)
    except ConfigError as e:
        ui.show_setting_error(e)
        return
    job_dir = jobs.create_evaluation(ws, cfg)
    outcome = jobs.submit(job_dir)
    st.toast(f"Evaluation {job_dir.name} {'started' if outcome == 'started' else 'queued behind the jobs ahead'}",
             icon=":material/analytics:")


def compare_on_eval_set(ws: Path, run: dict, config: dict, model: str) -> None:
    """The one-click action for a selected run: base vs tuned on the run's own eval file, its task and
    template, the first COMPARE_ROWS rows, in the task's default mode (classification: label scoring)."""
    path = config.get("eval_file") or inventory.sibling_eval(config.get("train_file"))
    task = config.get("task") if config.get("task") in EVAL_TASKS else "summarization"
    if not path or not Path(path).exists():
        st.info("This run has no eval file: choose the data to evaluate on below.", icon=":material/info:")
        return
    try:
        ds = cached.load_dataset(path, config.get("input_column"), config.get("output_column"))
    except DataError as e:
        ui.show_data_error(e)
        return
    limit = min(COMPARE_ROWS, len(ds))
    c1, c2 = st.columns([1, 3], vertical_alignment="center")
    if c1.button("Compare on eval set", type="primary", icon=":material/compare_arrows:", key="ev_compare",
                 width="stretch"):
        start_evaluation(ws, run, model, path, ds, task, limit)
    c2.caption(f"Base and tuned answer the first **{limit}** of {len(ds)} rows of `{Path(path).name}` "
               f"({TASK_NAMES[task].lower()}, the run's template, {MODE_CAPTIONS[resolve_eval_mode(task)]}). "
               "It runs in the background; you can leave this page.")


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
    default = (config.get("eval_file") or inventory.sibling_eval(train) or train
               or str(inventory.SAMPLES_DIR / "classification_eval.jsonl"))
    c1, c2, c3 = st.columns([3, 1, 1])
    with c1:
        path = ui.pick_dataset("Eval data", key=f"ev_data::{run_id}", default=default,
                               help="Labelled examples the models did not see in training.")
    if path is None:
        return
    if run:  # `studio evaluate` reads the data with the run's columns
        try:
            ds = cached.load_dataset(path, config.get("input_column"), config.get("output_column"))
        except DataError as e:
            ui.show_data_error(e)
            return
    else:  # detected, or mapped by the user (remembered from the Datasets page)
        ds = ui.dataset_with_mapping(path, key=f"ev_map::{path}")
        if ds is None:
            return
    guess = config.get("task") if config.get("task") in EVAL_TASKS else inventory.guess_task(ds)
    task = c2.selectbox("Task", EVAL_TASKS, index=EVAL_TASKS.index(guess),
                        format_func=TASK_NAMES.get, key=f"ev_task::{run_id}::{path}", help=TASK_HELP)
    limit = c3.number_input("Rows", 1, len(ds), value=min(50, len(ds)), key=f"ev_limit::{path}",
                            help=f"The first N of {len(ds)} rows.")
    mode = "generate"
    if task == "classification":
        mode = st.radio("Answers", list(MODE_CHOICES), format_func=MODE_CHOICES.get, horizontal=True,
                        key=f"ev_mode::{run_id}", help=MODE_HELP)
    answers = int(limit) * (2 if run else 1)
    st.caption(f"{answers} answers ({'base and tuned' if run else 'base model'}): {MODE_CAPTIONS[mode]}. "
               "It runs in the background; you can leave this page.")
    if st.button("Run evaluation", type="secondary" if run else "primary", icon=":material/analytics:"):
        start_evaluation(ws, run, model, path, ds, task, int(limit), mode)


@st.fragment(run_every=2)
def live_evaluations(dirs: list[str]) -> None:
    finished = None
    for d in dirs:
        status = core_eval_status(d)
        state = status.get("state")
        with st.container(border=True):
            head, badge = st.columns([5, 1], vertical_alignment="center")
            head.markdown(f"**{status.get('name') or Path(d).name}**  \n:gray[{Path(d).name}]")
            with badge:
                ui.status_badge(state)
            done, total = int(status.get("done") or 0), int(status.get("total") or 0)
            place = job_queue.position(cached.workspace(), Path(d).name)
            if place:
                text = f"Waiting: position {place[0]} of {place[1]} in the queue (one job computes at a time)"
            else:
                scoring = (jobs.read_job(Path(d)).get("config") or {}).get("mode") == "score"
                what = "loading the model" if done == 0 else "scoring the labels" if scoring else "generating answers"
                text = f"{done} of {total} answers · {what}" if total else "starting…"
            st.progress(done / total if total else 0.0, text=text)
        if state not in ACTIVE_STATES:
            finished = d
    if finished:
        st.session_state["ev_select_next"] = finished
        st.rerun()


st.title("Evaluate")
st.caption("Score the base model, and a tuned run on the same rows, against labelled examples: accuracy and "
           "per-class F1 for classification, ROUGE for summarization, exact match and F1 for question answering, "
           "BLEU and ROUGE-L for text generation; then see row by row what tuning fixed and broke.")
ws = cached.workspace()
new_evaluation(ws)

evaluations = cached.list_evaluations()
active = [e["dir"] for e in evaluations if e["status"].get("state") in ACTIVE_STATES]
if active:
    st.subheader("In progress")
    live_evaluations(active)

st.subheader("Results")
done = [e for e in evaluations if e["status"].get("state") not in ACTIVE_STATES]
if not done:
    st.info("No finished evaluations yet. Start one above; results appear here.", icon=":material/info:")
else:
    by_dir = {e["dir"]: e for e in done}
    if st.session_state.get("ev_select_next") in by_dir:
        st.session_state["ev_pick"] = st.session_state.pop("ev_select_next")
    ui.seed_choice("ev_pick", list(by_dir), None)
    chosen = st.selectbox("Evaluation", list(by_dir), key="ev_pick", format_func=lambda d: (
        f"{by_dir[d]['title']}  ·  {by_dir[d]['status'].get('state')}  ·  {by_dir[d]['name']}"))
    eval_dashboards.show_evaluation(ws, by_dir[chosen])
