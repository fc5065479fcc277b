"""One run as people watch it (progress, curves, the adapter's step, eval answers, settings, log, and
Cancel / Resume). Every number comes from the run folder through core (runs, jobs, monitor); this
module only lays it out. Used by the Tune and Runs pages; the job queue is studio/queue_views.py."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core import job_queue, jobs, runs
from core.metrics import parse_label
from core.monitor import read_samples
from core.names import ACTIVE_STATES, CONFIG_FILE, METHOD_NAMES, TASK_NAMES, UNREADABLE
from studio import charts, export_views, ui

# The small charts under the loss curve, per tuning method: (choice, [(metrics field, name, colour)], axis, %).
MORE_CURVES = {
    "sft": {"Next-token accuracy": ([("mean_token_accuracy", "Train", charts.TUNED_COLOR),
                                     ("eval_mean_token_accuracy", "Eval", charts.EVAL_COLOR)], "Accuracy", True)},
    "dpo": {"Rewards": None},  # charts.rewards_figure: accuracy and margin side by side
}
COMMON_CURVES = {"Learning rate": ([("learning_rate", "Learning rate", charts.PRIMARY)], "Learning rate", False),
                 "Tokens / s": ([("tokens_per_s", "Tokens / s", charts.PRIMARY)], "Tokens / s", False)}


def run_name(status: dict, run_id: str) -> str:
    return status.get("name") or run_id


def model_name(model: str | None) -> str:
    return (model or "?").replace("bundled:", "") + (" (bundled)" if (model or "").startswith("bundled:") else "")


# ---------------------------------------------------------------- actions

def _cancel(run_dir: Path) -> None:
    try:
        jobs.cancel(run_dir)
    except ValueError as e:  # left the queue meanwhile
        ui.say("error", str(e))
    else:
        ui.say("toast", "Cancel requested")


def _resume(run_dir: Path) -> None:
    try:
        outcome = jobs.resume(run_dir)
    except ValueError as e:
        ui.say("error", f"**Cannot resume:** {e}")
    else:
        ui.say("success", f"Resuming from {runs.last_checkpoint(run_dir).name}: the run {outcome}."
             if outcome == "started" else "Resume queued: it goes on after the runs ahead of it.")


def actions(run_dir: Path, status: dict) -> None:
    state = status.get("state")
    if state in ACTIVE_STATES:
        if state == "running" and jobs.cancel_requested(run_dir):
            st.info("Cancel requested: the run stops after the current step and keeps its adapter and a "
                    "checkpoint to resume from.", icon=":material/hourglass_top:")
        else:
            st.button("Cancel run", icon=":material/stop_circle:", key=f"cancel::{run_dir.name}", on_click=_cancel,
                      args=(run_dir,), help="A running run stops after its current step and keeps what it learned; "
                                            "a waiting one leaves the queue.")
    elif state in ("failed", "cancelled"):
        ckpt = runs.last_checkpoint(run_dir)
        if ckpt is not None:
            st.button(f"Resume from step {runs.checkpoint_step(ckpt)}", icon=":material/play_circle:",
                      key=f"resume::{run_dir.name}", on_click=_resume, args=(run_dir,), type="primary",
                      help="Goes on from the last checkpoint (weights, optimizer and data order) to the same "
                           "final step.")


# ---------------------------------------------------------------- the panel

def progress(run_dir: Path, status: dict) -> None:
    state, step = status.get("state"), int(status.get("step") or 0)
    max_steps = int(status.get("max_steps") or 1)
    if state == "queued":
        place = job_queue.position(run_dir.parent.parent, run_dir.name)
        where = f"position {place[0]} of {place[1]} in the queue" if place else "starting the worker"
        st.progress(min(1.0, step / max_steps), text=f"Waiting: {where}")
    elif state == "running":
        eta = f" · about {ui.fmt_duration(status['eta_s'])} left" if status.get("eta_s") else ""
        st.progress(min(1.0, step / max_steps),
                    text=f"Step {step} of {max_steps} · {status.get('phase') or 'starting'}{eta}")


def headline(metrics: list[dict], status: dict) -> None:
    train = [m for m in metrics if m.get("loss") is not None]
    evals = [m for m in metrics if m.get("eval_loss") is not None]
    c = st.columns(4)
    c[0].metric("Step", f"{int(status.get('step') or 0)} / {int(status.get('max_steps') or 0)}", border=True)
    c[1].metric("Train loss", f"{train[-1]['loss']:.4f}" if train else "–", border=True,
                delta=f"{train[-1]['loss'] - train[0]['loss']:+.4f}" if len(train) > 1 else None,
                delta_color="inverse", help="Latest logged loss; the change is since the first step.")
    c[2].metric("Eval loss", f"{evals[-1]['eval_loss']:.4f}" if evals else "–", border=True,
                delta=f"{evals[-1]['eval_loss'] - evals[0]['eval_loss']:+.4f}" if len(evals) > 1 else None,
                delta_color="inverse", help="Loss on held-out examples: it should fall too.")
    tps = next((m["tokens_per_s"] for m in reversed(train) if m.get("tokens_per_s")), None)
    c[3].metric("Tokens / s", f"{tps:,.0f}" if tps else "–", border=True)


def best_mark(metrics: list[dict], status: dict, config: dict) -> tuple[int, float, str] | None:
    """The step whose adapter is kept: recorded by the worker at the end; while training, the lowest
    eval loss so far (when the run keeps the best adapter)."""
    active = status.get("state") in ACTIVE_STATES
    if not active and status.get("best_eval_loss") is not None and status.get("best_step") is not None:
        return int(status["best_step"]), float(status["best_eval_loss"]), f"adapter: step {status['best_step']}"
    evals = [m for m in metrics if m.get("eval_loss") is not None]
    if active and evals and config.get("best_checkpoint", True):
        low = min(evals, key=lambda m: m["eval_loss"])
        return int(low["step"]), float(low["eval_loss"]), f"lowest so far: step {low['step']}"
    return None


def notes(status: dict, config: dict) -> None:
    """What the adapter is and why the run ended where it did."""
    state = status.get("state")
    if state in ("succeeded", "cancelled") and status.get("best_eval_loss") is not None and status.get("best_step"):
        st.markdown(f":green-badge[:material/star: Adapter from step {status['best_step']} (lowest eval loss, "
                    f"{float(status['best_eval_loss']):.4f})]")
    elif state == "succeeded" and config.get("best_checkpoint", True) and status.get("eval_rows") == 0:
        st.caption("The adapter is from the last step: without eval data there is no eval loss to pick a "
                   "best step by.")
    if status.get("stopped_early"):
        patience = config.get("early_stopping_patience")
        st.info(f"**Stopped early** at step {status.get('step')} of {status.get('max_steps')}: the eval loss had "
                f"not improved for {patience} evals in a row (early stopping patience).",
                icon=":material/trending_flat:")
    if status.get("resumed_from"):
        st.caption(f":material/replay: Resumed from the checkpoint of step {status['resumed_from']}.")


def curves(metrics: list[dict], status: dict, config: dict) -> None:
    method = config.get("method") or "sft"
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    smooth = c1.toggle("Smoothed train loss", value=True, key="run_smooth",
                       help=f"An exponential moving average over the noisy per-step loss (drawn from "
                            f"{charts.SMOOTH_MIN_POINTS} logged steps on); the raw curve stays, fainter.")
    options = {**MORE_CURVES.get(method, {}), **COMMON_CURVES}
    more = c2.pills("More curves", list(options), selection_mode="multi", key=f"run_more_curves::{method}",
                    help="Shown side by side under the loss; your choice is kept for other runs.") or []
    fig = charts.train_loss_figure(metrics, smooth=smooth, best=best_mark(metrics, status, config))
    if fig is not None:
        ui.chart(fig)
    elif status.get("state") in ACTIVE_STATES:
        st.caption("The loss curve appears after the first step (loading the model can take a minute).")
    wide, narrow = [], []  # the rewards' two panels get a row of their own
    for choice in more:
        if options[choice] is None:
            wide.append((choice, charts.rewards_figure(metrics)))
        else:
            series, axis, percent = options[choice]
            narrow.append((choice, charts.series_figure(metrics, series, axis, percent=percent)))
    for group in ([[w] for w in wide] + ([narrow] if narrow else [])):
        for col, (choice, fig) in zip(st.columns(len(group)), group):
            with col:
                st.markdown(f"**{choice}**")
                if fig is not None:
                    ui.chart(fig)
                else:
                    st.caption("Not logged yet.")


def samples_table(run_dir: Path, config: dict) -> None:
    """A few eval rows answered at each eval point, newest step first."""
    rows = read_samples(run_dir)
    if not rows:
        if config.get("eval_samples"):
            st.caption("Eval answers appear here at each eval point.")
        return
    labels = config.get("labels") or []
    table = pd.DataFrame([{"Step": r["step"], "Line": r.get("line"), "Prompt": r.get("input_text", ""),
                           "Reference": r["reference"], "Answer": r["answer"],
                           **({"Right": parse_label(r["answer"], labels) == r["reference"]}
                              if config.get("task") == "classification" and labels else {})} for r in rows])
    table = table.sort_values(["Step", "Line"], ascending=[False, True], kind="stable")
    newest = int(table["Step"].iloc[0])
    st.markdown(f"**Eval answers during tuning** · newest: step {newest}")
    st.dataframe(table, hide_index=True, height=min(400, 35 * (len(table) + 1) + 3),
                 column_config={"Step": st.column_config.NumberColumn(width=50),
                                "Line": st.column_config.NumberColumn(width=50),
                                "Prompt": st.column_config.TextColumn(width=240),
                                "Reference": st.column_config.TextColumn(width=250),
                                "Answer": st.column_config.TextColumn(width=250),
                                "Right": st.column_config.CheckboxColumn(width=55,
                                                                         help="The answer names the reference label.")})


def details(run_dir: Path, status: dict, config: dict) -> None:
    state = status.get("state")
    order = ["Log", "Settings", "Data and hardware"] if state == "failed" else ["Settings", "Data and hardware", "Log"]
    by_name = dict(zip(order, st.tabs(order)))  # a failed run opens on its log
    with by_name["Settings"]:
        st.markdown("**Prompt template**")
        st.code(config.get("template", ""), language=None, wrap_lines=True)
        st.json({k: v for k, v in config.items() if k != "template"}, expanded=False)
    with by_name["Data and hardware"]:
        held = ("a held-out slice of the training data" if status.get("eval_rows") else "none")
        facts = {"Method": METHOD_NAMES.get(config.get("method") or "sft"),
                 "Training data": config.get("train_file"),
                 "Preference queue": config.get("preference_queue"),
                 "Eval data": config.get("eval_file") or held,
                 "Rows": (f"{status['train_rows']:,} train / {status.get('eval_rows', 0):,} eval"
                          if status.get("train_rows") is not None else None),
                 "Base model": config.get("model"),
                 "Device": status.get("device"), "Precision": status.get("precision"),
                 "Peak memory": f"{status['peak_memory_mb']:,.0f} MB" if status.get("peak_memory_mb") else None,
                 "Time": ui.fmt_duration(status["elapsed_s"]) if status.get("elapsed_s") else None,
                 "Folder": str(run_dir)}
        st.markdown("\n".join(f"- **{k}:** `{v}`" for k, v in facts.items() if v))
    with by_name["Log"]:
        log = runs.log_tail(run_dir, 60)
        if log:
            st.code(log, language=None)
        else:
            st.caption("No log lines yet.")


def run_panel(run_dir: Path, status: dict) -> None:
    """One run's card, top to bottom: what it is, what went wrong (first, when it failed), what to do,
    progress, numbers, curves, eval answers and the details."""
    config = runs.read_json(run_dir / CONFIG_FILE, {}) or {}
    metrics = runs.read_metrics(run_dir)
    state = status.get("state")
    with st.container(border=True):
        head, badge = st.columns([5, 1], vertical_alignment="center")
        head.markdown(f"**{run_name(status, run_dir.name)}**")
        head.caption(" · ".join(x for x in (
            METHOD_NAMES.get(config.get("method") or "sft"), TASK_NAMES.get(config.get("task"), config.get("task")),
            model_name(config.get("model")), runs.dataset_label(config), f"created {str(status.get('created', ''))[:16]}")
            if x))
        with badge:
            ui.status_badge(state)
        ui.show_message()
        if state == UNREADABLE:
            st.error(f"**This run's folder cannot be read:** {status.get('error')}", icon=":material/broken_image:")
            st.caption(status.get("hint") or "")
            return
        if state == "failed":
            ui.show_failure("The run", status)
        elif state == "cancelled":
            st.warning(f"Cancelled at step {status.get('step') or 0}. "
                       + ("The adapter trained so far is saved and can be used." if runs.has_adapter(run_dir)
                          else (status.get("hint") or "")), icon=":material/cancel:")
        elif state == "succeeded":
            st.success("Tuning finished and the adapter is saved. Compare base and tuned answers in "
                       "**Playground**, or score them in **Evaluate**.", icon=":material/check_circle:")
        actions(run_dir, status)
        progress(run_dir, status)
        headline(metrics, status)
        glance = [status.get("device"), status.get("precision") and f"{status['precision']} precision",
                  f"{status['train_rows']:,} train / {status.get('eval_rows', 0):,} eval rows"
                  if status.get("train_rows") is not None else None,
                  f"peak memory {status['peak_memory_mb']:,.0f} MB" if status.get("peak_memory_mb") else None,
                  f"elapsed {ui.fmt_duration(status['elapsed_s'])}" if status.get("elapsed_s") else None]
        if any(glance):
            st.caption(" · ".join(g for g in glance if g))
        notes(status, config)
        curves(metrics, status, config)
        samples_table(run_dir, config)
        details(run_dir, status, config)
        export_views.export_panel(run_dir, status)


@st.fragment(run_every=2)
def live_panel(run_dir: Path) -> None:
    status = runs.read_status(run_dir)
    run_panel(run_dir, status)
    if status.get("state") not in ACTIVE_STATES:
        st.rerun()  # a full rerun shows the finished run without polling


def show_run(run_dir: Path, status: dict) -> None:
    """The run's panel: refreshed every 2 s while it is queued or running, drawn once otherwise."""
    if status.get("state") in ACTIVE_STATES:
        live_panel(run_dir)
    else:
        run_panel(run_dir, status)
