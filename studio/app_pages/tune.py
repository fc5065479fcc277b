"""Tune: set up a LoRA tuning run, start it as a background job, and watch it live."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import jobs, runs
from core.config import BASE_LEARNING_RATE, BUNDLED_MODEL, TASKS, ConfigError, LoraSettings, TuneConfig, \
    recommend_steps
from core.data import DataError
from core.models import ModelError
from core.templates import default_template, training_pairs
from studio import charts, ui

TASK_NAMES = {"classification": "Classification", "summarization": "Summarization",
              "text_generation": "Text generation"}


def setup_form(ws: Path) -> None:
    """The three setup cards and the launch button; returns early while the data is not usable."""
    with st.container(border=True):
        st.subheader("1 · Data and task")
        c1, c2 = st.columns(2)
        with c1:
            train_path = ui.pick_dataset("Training data", key="tune_train",
                                         help="Add or upload datasets on the Datasets page.")
        with c2:
            eval_path = ui.pick_dataset("Eval data (optional)", key=f"tune_eval::{train_path}", optional=True,
                                        default=ui.sibling_eval(train_path),
                                        none_label="None: hold out a slice of the training data",
                                        help="Used for the eval loss curve while tuning.")
        if train_path is None:
            return
        ds = ui.dataset_with_mapping(train_path, key="tune_map")
        if ds is None:
            return
        c1, c2 = st.columns(2)
        guess = "classification" if ui.looks_like_labels(ds) else "summarization"
        task = c1.selectbox("Task", TASKS, index=TASKS.index(guess), key=f"tune_task::{train_path}",
                            format_func=TASK_NAMES.get,
                            help="Decides the default prompt template and which metrics Evaluate shows.")
        model = c2.text_input("Base model", value=BUNDLED_MODEL, key="tune_model",
                              help="The bundled default works offline. Or a Hugging Face model id "
                                   "(e.g. HuggingFaceTB/SmolLM2-360M-Instruct) or a local model folder.")
        labels = ds.labels if task == "classification" else []
        summary = f"{len(ds)} training examples"
        if labels:
            summary += f" · {len(labels)} labels: {', '.join(labels[:12])}{' …' if len(labels) > 12 else ''}"
        st.caption(summary)

    with st.container(border=True):
        st.subheader("2 · Prompt template")
        st.caption("`{input_text}` is replaced by each example's prompt, and the result is sent as a user turn "
                   "through the model's chat template. The template is stored with the run and reused by "
                   "Playground and Evaluate, so the tuned model is always asked the way it was taught.")
        template = st.text_area("Template", value=default_template(task, labels), height=120,
                                key=f"tune_template::{task}::{train_path}", label_visibility="collapsed")
        if st.button("Preview one rendered example", icon=":material/visibility:",
                     help="Loads the model's tokenizer to apply its chat template."):
            try:
                with st.spinner("Loading the tokenizer…"):
                    tok = ui.load_tokenizer(model)
                pair = training_pairs(tok, template, ds.examples[0])[0]  # a chat trains on its first model turn too
                shown = pair["prompt"] + pair["completion"]
                st.code(shown, language=None, wrap_lines=True)
                st.caption("The prompt as the model sees it, followed by the answer it is taught to give.")
            except (ModelError, ValueError, OSError) as e:
                st.error(str(e))

    with st.container(border=True):
        st.subheader("3 · Settings")
        c = st.columns(4)
        batch_size = c[0].selectbox("Batch size", [1, 2, 4, 8, 16, 32], index=3, key="tune_batch",
                                    help="Examples per optimizer step. Lower it if you run out of memory.")
        rec_steps, why = recommend_steps(task, len(ds), batch_size)
        steps = c[1].number_input("Steps (max_iterations)", 1, 100_000, value=rec_steps, step=10,
                                  key=f"tune_steps::{task}::{len(ds)}::{batch_size}",
                                  help="Optimizer steps; the default follows your data size and task.")
        multiplier = c[2].number_input("Learning rate multiplier", 0.01, 50.0, value=1.0, step=0.1, format="%.2f",
                                       key="tune_lr_mult",
                                       help=f"learning_rate_multiplier: 1.0 stands for a learning rate of "
                                            f"{BASE_LEARNING_RATE:g}, a common LoRA default.")
        eval_every = c[3].number_input("Eval every (steps)", 1, 100_000, value=min(20, int(steps)), step=5,
                                       key=f"tune_eval_every::{int(steps)}",
                                       help="How often the eval loss is computed.")
        st.caption(f":material/info: {why} Learning rate: {multiplier:g} × {BASE_LEARNING_RATE:g} = "
                   f"{multiplier * BASE_LEARNING_RATE:.3g}.")
        c = st.columns(4)
        rank = c[0].selectbox("LoRA rank", [4, 8, 16, 32, 64], index=1, key="tune_rank",
                              help="Size of the adapter: higher learns more, uses more memory.")
        alpha = c[1].number_input("LoRA alpha", 1, 1024, value=2 * rank, key=f"tune_alpha::{rank}",
                                  help="Scales the adapter's update (effective scale alpha / rank).")
        max_len = c[2].selectbox("Max sequence length", [128, 256, 512, 1024, 2048, 4096], index=2,
                                 key="tune_maxlen", help="Prompt + answer tokens; longer examples are cut.")
        name = c[3].text_input("Run name (optional)", key="tune_name", placeholder="e.g. sections-v1")
        with st.expander("Advanced"):
            a1, a2 = st.columns(2)
            device = a1.selectbox("Device", ["auto", "cuda", "mps", "cpu"], key="tune_device",
                                  help="auto picks a GPU when there is one.")
            seed = a2.number_input("Seed", 0, 2**31 - 1, value=0, key="tune_seed")

    if st.button("Start tuning", type="primary", icon=":material/rocket_launch:"):
        try:
            if eval_path:  # the worker reads it with the training columns; fail here, not there
                ui.load_dataset(eval_path, ds.input_column, ds.output_column)
            cfg = TuneConfig(task=task, train_file=str(Path(train_path).resolve()),
                             eval_file=str(Path(eval_path).resolve()) if eval_path else None,
                             template=template, model=model.strip() or BUNDLED_MODEL, max_iterations=int(steps),
                             learning_rate=multiplier * BASE_LEARNING_RATE, batch_size=int(batch_size),
                             max_seq_length=int(max_len), eval_every=int(eval_every),
                             lora=LoraSettings(rank=int(rank), alpha=int(alpha)), labels=labels,
                             input_column=ds.input_column, output_column=ds.output_column, device=device,
                             seed=int(seed), name=name.strip())
        except DataError as e:
            ui.show_data_error(e)
        except ConfigError as e:
            st.error(f"**Setting problem:** {e}", icon=":material/tune:")
        else:
            run_dir = runs.create_run(ws, cfg.to_dict(), name=cfg.name)
            jobs.start_tuning(run_dir)
            st.session_state["tune_run_pick"] = run_dir.name
            st.toast(f"Run {run_dir.name} started", icon=":material/rocket_launch:")


def render_run(run_dir: Path, status: dict) -> None:
    """One run's card: state, progress, headline numbers, loss curve, and what to do next."""
    config = runs.read_json(run_dir / "config.json", {}) or {}
    metrics = runs.read_metrics(run_dir)
    state = status.get("state")
    with st.container(border=True):
        head, badge = st.columns([5, 1], vertical_alignment="center")
        head.markdown(f"**{status.get('name') or run_dir.name}**")
        head.caption(f"{TASK_NAMES.get(config.get('task'), config.get('task', ''))} · {config.get('model', '')} · "
                     f"{Path(config.get('train_file', '')).name} · created {status.get('created', '')}")
        with badge:
            ui.status_badge(state)
        step, max_steps = int(status.get("step") or 0), int(status.get("max_steps") or 1)
        if state in ui.ACTIVE_STATES:
            eta = f" · about {ui.fmt_duration(status['eta_s'])} left" if status.get("eta_s") else ""
            phase = status.get("phase") or ("waiting for the worker" if state == "queued" else "starting")
            st.progress(min(1.0, step / max_steps), text=f"Step {step} of {max_steps} · {phase}{eta}")

        train = [m for m in metrics if m.get("loss") is not None]
        evals = [m for m in metrics if m.get("eval_loss") is not None]
        c = st.columns(4)
        c[0].metric("Step", f"{step} / {max_steps}", border=True)
        c[1].metric("Train loss", f"{train[-1]['loss']:.4f}" if train else "–", border=True,
                    delta=f"{train[-1]['loss'] - train[0]['loss']:+.4f}" if len(train) > 1 else None,
                    delta_color="inverse", help="Latest logged loss; the change is since the first step.")
        c[2].metric("Eval loss", f"{evals[-1]['eval_loss']:.4f}" if evals else "–", border=True,
                    delta=f"{evals[-1]['eval_loss'] - evals[0]['eval_loss']:+.4f}" if len(evals) > 1 else None,
                    delta_color="inverse", help="Loss on held-out examples: it should fall too.")
        tps = next((m["tokens_per_s"] for m in reversed(train) if m.get("tokens_per_s")), None)
        c[3].metric("Tokens / s", f"{tps:,.0f}" if tps else "–", border=True)
        details = [status.get("device"), status.get("precision"),
                   f"{status['train_rows']} train / {status.get('eval_rows', 0)} eval rows"
                   if status.get("train_rows") else None,
                   f"elapsed {ui.fmt_duration(status['elapsed_s'])}" if status.get("elapsed_s") else None]
        if any(details):
            st.caption(" · ".join(d for d in details if d))

        fig = charts.loss_figure(metrics)
        if fig is not None:
            ui.chart(fig)
        elif state in ui.ACTIVE_STATES:
            st.caption("The loss curve appears after the first step (loading the model can take a minute).")

        if state in ui.ACTIVE_STATES:
            if (run_dir / jobs.CANCEL_FILE).exists():
                st.info("Cancel requested: the run stops after the current step and keeps its adapter.")
            elif st.button("Cancel run", icon=":material/stop_circle:", key=f"cancel::{run_dir.name}"):
                jobs.cancel(run_dir)
                st.toast("Cancel requested")
        elif state == "failed":
            st.error(f"**The run failed:** {status.get('error') or 'unknown error'}", icon=":material/error:")
            if status.get("hint"):
                st.info(status["hint"], icon=":material/lightbulb:")
        elif state == "cancelled":
            st.warning(f"Cancelled at step {step}. The adapter trained so far is saved and can be used.",
                       icon=":material/cancel:")
        elif state == "succeeded":
            st.success("Tuning finished and the adapter is saved. Compare base and tuned answers in "
                       "**Playground**, or score them in **Evaluate**.", icon=":material/check_circle:")

        log = runs.log_tail(run_dir, 40)
        if log:
            with st.expander("Worker log (last lines)", expanded=state == "failed"):
                st.code(log, language=None)
        with st.expander("Run configuration"):
            st.markdown("**Prompt template**")
            st.code(config.get("template", ""), language=None, wrap_lines=True)
            st.json({k: v for k, v in config.items() if k != "template"}, expanded=False)
            st.caption(f"Folder: `{run_dir}`")


@st.fragment(run_every=2)
def live_run(run_dir: Path) -> None:
    status = runs.read_status(run_dir)
    render_run(run_dir, status)
    if status.get("state") not in ui.ACTIVE_STATES:
        st.rerun()  # a full rerun shows the finished run without polling


st.title("Tune")
st.caption("Teach a small open model your task with LoRA: a small adapter learns from your examples while "
           "the base model's weights stay as they are. The run goes on in the background, even if you close "
           "the browser.")
ws = ui.workspace()
setup_form(ws)

st.subheader("Runs")
all_runs = runs.list_runs(ws)
if not all_runs:
    st.info("No runs yet. Set one up above and press **Start tuning**.", icon=":material/info:")
else:
    chosen = ui.pick_run("Run", key="tune_run_pick", items=all_runs, help="Newest first.")
    run_dir = Path(chosen["run_dir"])
    if chosen["status"].get("state") in ui.ACTIVE_STATES:
        live_run(run_dir)
    else:
        render_run(run_dir, chosen["status"])
