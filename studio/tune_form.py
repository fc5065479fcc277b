"""The Tune page's setup form: the data and task card (supervised or DPO), the prompt template and
settings cards, the run's TuneConfig (built by core.requests), the launch into the job queue, and the
measured speed of a short trial. Every decision is core's; this module only lays it out."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import inventory, job_queue, jobs, preferences, queue_overview, runs
from core.config import (
    BUNDLED_MODEL,
    DPO_TEMPLATE,
    SMALL_MODEL_LEARNING_RATE,
    SWEEP_NOTE,
    ConfigError,
    TuneConfig,
    base_learning_rate,
    default_eval_every,
    recommend_dpo_steps,
    recommend_steps,
)
from core.data import MIN_EXAMPLES, DataError
from core.data_formats import labeled_pairs
from core.launch import gpu_count
from core.model_size import parameter_estimate
from core.models import ModelError
from core.names import DEVICES, METHOD_NAMES, TASK_NAMES, TASKS
from core.requests import tune_config
from core.templates import default_template, training_pairs
from studio import cached, ui

# Settings that change the time per step: a measurement taken with other values no longer holds.
SPEED_KEYS = ("model", "method", "train_file", "batch_size", "max_seq_length", "lora_rank", "device", "processes")


def speed_view(config: dict) -> dict:
    """The settings a measured speed depends on, from a TuneConfig dict (the trial's) or the form's."""
    return {"model": config.get("model"), "method": config.get("method"), "train_file": config.get("train_file"),
            "batch_size": config.get("batch_size"), "max_seq_length": config.get("max_seq_length"),
            "lora_rank": (config.get("lora") or {}).get("rank"), "device": config.get("device"),
            "processes": config.get("processes") or 1,
            "max_iterations": config.get("max_iterations"), "eval_every": config.get("eval_every")}


def sft_data() -> dict | None:
    c1, c2 = st.columns(2)
    with c1:
        train_path = ui.pick_dataset("Training data", key="tune_train",
                                     help="Add or upload datasets on the Datasets page.")
    with c2:
        eval_path = ui.pick_dataset("Eval data (optional)", key=f"tune_eval::{train_path}", optional=True,
                                    default=inventory.sibling_eval(train_path),
                                    none_label="None: hold out a slice of the training data",
                                    help="Used for the eval loss curve, the best checkpoint and early stopping.")
    if train_path is None:
        return None
    ds = ui.dataset_with_mapping(train_path, key="tune_map")
    if ds is None:
        return None
    c1, c2 = st.columns(2)
    guess = inventory.guess_task(ds)
    task = c1.selectbox("Task", TASKS, index=TASKS.index(guess), key=f"tune_task::{train_path}",
                        format_func=TASK_NAMES.get,
                        help="Decides the default prompt template and which metrics Evaluate shows. "
                             f"Suggested: {inventory.task_reason(ds)} Change it if that is not your task.")
    model = model_input(c2)
    labels = ds.labels if task == "classification" else []
    summary = f"{len(ds)} training examples"
    if labels:
        summary += f" · {len(labels)} labels: {', '.join(labels[:12])}{' …' if len(labels) > 12 else ''}"
    st.caption(summary)
    return {"method": "sft", "train_file": train_path, "eval_path": eval_path, "ds": ds,
            "task": task, "labels": labels, "model": model, "rows": len(ds), "input_column": ds.input_column,
            "output_column": ds.output_column, "queue": None}


def dpo_data(ws: Path) -> dict | None:
    source = st.radio("Preference pairs from", ["queue", "file"], horizontal=True, key="tune_dpo_source",
                      format_func={"queue": "A labeling queue", "file": "A pairs file"}.get)
    queue = None
    if source == "queue":
        queues = preferences.list_queues(ws)
        if not queues:
            st.info("No labeling queues yet. Collect preferences on the **Preferences** page (or import a pairs "
                    "file there), then come back.", icon=":material/thumbs_up_down:")
            return None
        curated = {q["name"]: len(preferences.final_pairs(ws, q["name"])) for q in queues}
        items = {q["name"]: q["items"] for q in queues}
        queue = st.selectbox("Labeling queue", list(curated), key="tune_queue",
                             format_func=lambda n: f"{n}  ·  {items[n]} items  ·  {curated[n]} curated pairs",
                             help="Curated pairs: the adjudicated choice, else the majority label. Ties, "
                                  "both-bad and split votes are left out.")
        rows, train_file = curated[queue], None
    else:
        path = ui.pick_dataset("Preference pairs file", key="tune_pairs",
                               help="Columns input_text, candidate_0, candidate_1, choice (or prompt, chosen, "
                                    "rejected).")
        if path is None:
            return None
        try:
            rows = len(labeled_pairs(cached.valid_examples(path, format="preference").examples))
        except DataError as e:
            ui.show_data_error(e)
            return None
        train_file = path
    c1, c2 = st.columns(2)
    task = c1.selectbox("Task", TASKS, index=TASKS.index("text_generation"), key="tune_dpo_task",
                        format_func=TASK_NAMES.get, help="Which metrics Evaluate shows for the tuned model.")
    model = model_input(c2)
    st.caption(f"{rows} preference pairs · a tenth is held out for the eval reward accuracy (from 20 pairs on)")
    if rows < MIN_EXAMPLES:
        st.warning(f"DPO needs at least {MIN_EXAMPLES} pairs; this source has {rows}. Label more pairs on the "
                   "**Preferences** page.", icon=":material/warning:")
    return {"method": "dpo", "train_file": train_file, "eval_path": None, "ds": None, "task": task, "labels": [],
            "model": model, "rows": rows, "input_column": None, "output_column": None, "queue": queue}


def model_input(col) -> str:
    return col.text_input("Base model", value=BUNDLED_MODEL, key="tune_model",
                          help="The bundled default works offline. Or a Hugging Face model id "
                               "(e.g. HuggingFaceTB/SmolLM2-360M-Instruct), a local model folder, or "
                               "`run:RUN_ID` to start from a finished run (e.g. DPO after supervised tuning).")


def template_card(data: dict) -> str:
    with st.container(border=True):
        st.subheader("2 · Prompt template")
        if data["method"] == "dpo":
            st.caption("Each pair's prompt goes through this template, then through the model's chat template; "
                       "the chosen and rejected answers follow it. `{input_text}` alone uses the prompts as they "
                       "were labeled.")
            default = DPO_TEMPLATE
        else:
            st.caption("`{input_text}` is replaced by each example's prompt, and the result is sent as a user "
                       "turn through the model's chat template. The template is stored with the run and reused "
                       "by Playground and Evaluate, so the tuned model is always asked the way it was taught.")
            default = default_template(data["task"], data["labels"])
        template = st.text_area("Template", value=default, height=120, label_visibility="collapsed",
                                key=f"tune_template::{data['method']}::{data['task']}::{data['train_file']}")
        if data["ds"] is not None and st.button("Preview one rendered example", icon=":material/visibility:",
                                                help="Loads the model's tokenizer to apply its chat template."):
            try:
                with st.spinner("Loading the tokenizer…"):
                    tok = cached.load_tokenizer(data["model"])
                pair = training_pairs(tok, template, data["ds"].examples[0])[0]  # a chat trains on its first turn
                st.code(pair["prompt"] + pair["completion"], language=None, wrap_lines=True)
                st.caption("The prompt as the model sees it, followed by the answer it is taught to give.")
            except (ModelError, ValueError, OSError) as e:
                st.error(str(e))
    return template


def settings_card(ws: Path, data: dict) -> dict:
    dpo = data["method"] == "dpo"
    parameters = parameter_estimate(data["model"].strip() or BUNDLED_MODEL, ws)
    base_lr = base_learning_rate(data["method"], parameters)
    with st.container(border=True):
        st.subheader("3 · Settings")
        c = st.columns(4)
        batch_size = c[0].selectbox("Batch size", [1, 2, 4, 8, 16, 32], index=2 if dpo else 3, key="tune_batch",
                                    help="Examples per optimizer step. Lower it if you run out of memory.")
        if dpo:
            rec_steps = recommend_dpo_steps(data["rows"], batch_size)
            why = f"{data['rows']} pairs at batch size {batch_size}: about two passes, {rec_steps} steps (50–1000)."
        else:
            rec_steps, why = recommend_steps(data["task"], data["rows"], batch_size)
        steps = c[1].number_input("Steps (max_iterations)", 1, 100_000, value=rec_steps, step=10,
                                  key=f"tune_steps::{data['method']}::{data['task']}::{data['rows']}::{batch_size}",
                                  help="Optimizer steps; the default follows your data size and task.")
        multiplier = c[2].number_input("Learning rate multiplier", 0.01, 50.0, value=1.0, step=0.1, format="%.2f",
                                       key=f"tune_lr_mult::{data['method']}",
                                       help=f"learning_rate_multiplier: 1.0 stands for a learning rate of "
                                            f"{base_lr:g}, the {'DPO' if dpo else 'supervised'} default for "
                                            f"{'this model' if parameters else 'a model of unknown size'}.")
        eval_every = c[3].number_input("Eval every (steps)", 1, 100_000, value=default_eval_every(int(steps)), step=5,
                                       key=f"tune_eval_every::{int(steps)}",
                                       help="How often the eval loss is computed and a checkpoint saved.")
        size = f" for a {parameters / 1e6:,.0f}M-parameter model" if parameters else ""
        swept = f", {SWEEP_NOTE}" if not dpo and base_lr == SMALL_MODEL_LEARNING_RATE else ""
        st.caption(f":material/info: {why} Learning rate: {multiplier:g} × {base_lr:g}{size}{swept} "
                   f"= {multiplier * base_lr:.3g}.")
        c = st.columns(4)
        rank = c[0].selectbox("LoRA rank", [4, 8, 16, 32, 64], index=1, key="tune_rank",
                              help="Size of the adapter: higher learns more, uses more memory.")
        alpha = c[1].number_input("LoRA alpha", 1, 1024, value=2 * rank, key=f"tune_alpha::{rank}",
                                  help="Scales the adapter's update (effective scale alpha / rank).")
        max_len = c[2].selectbox("Max sequence length", [128, 256, 512, 1024, 2048, 4096], index=2,
                                 key="tune_maxlen", help="Prompt + answer tokens; longer examples are cut.")
        name = c[3].text_input("Run name (optional)", key="tune_name", placeholder="e.g. sections-v1")
        c = st.columns(4, vertical_alignment="bottom")
        patience = c[0].number_input("Early stopping patience", 0, 100, value=0, key="tune_patience",
                                     help="Stop when the eval loss has not improved for this many evals in a "
                                          "row. 0 never stops early. Needs eval data.")
        eval_samples = c[1].number_input("Eval samples", 0, 20, value=3, key="tune_eval_samples",
                                         help="Eval examples the model answers at each eval point, so you can "
                                              "watch its answers change during tuning.")
        best = c[2].toggle("Keep the best checkpoint", value=True, key="tune_best",
                           help="The adapter is taken from the step with the lowest eval loss rather than the "
                                "last step. Needs eval data.")
        beta = 0.1
        if dpo:
            beta = c[3].number_input("Beta (DPO)", 0.01, 10.0, value=0.1, step=0.05, format="%.2f", key="tune_beta",
                                     help="How far the tuned model may move from the base: higher keeps it closer.")
        with st.expander("Advanced"):
            a1, a2, a3 = st.columns(3, vertical_alignment="bottom")
            device = a1.selectbox("Device", DEVICES, key="tune_device",
                                  help="auto picks a GPU when there is one.")
            seed = a2.number_input("Seed", 0, 2**31 - 1, value=0, key="tune_seed")
            checkpointing = a3.toggle("Gradient checkpointing", value=False, key="tune_checkpointing",
                                      help="Recompute activations in the backward pass: much less memory for "
                                           "long rows or big models, about a third slower.")
            gpus = gpu_count()
            processes = 1
            if gpus > 1 and device in ("auto", "cuda"):  # only a machine with several GPUs has the choice
                fits = max(n for n in range(1, gpus + 1) if batch_size % n == 0)  # all GPUs the batch splits over
                processes = a1.selectbox("GPUs (processes)", list(range(1, gpus + 1)), index=fits - 1,
                                         key="tune_processes",
                                         help="Train on this many GPUs at once, one process each (torchrun, data "
                                              "parallel): every batch is split among them, so the batch size must "
                                              "be a multiple of it. The run learns from the same batches.")
    return {"batch_size": int(batch_size), "steps": int(steps), "learning_rate_multiplier": float(multiplier),
            "eval_every": int(eval_every), "lora_rank": int(rank), "lora_alpha": int(alpha),
            "max_seq_length": int(max_len), "name": name.strip(), "early_stopping_patience": int(patience),
            "eval_samples": int(eval_samples), "best_checkpoint": bool(best), "device": device,
            "seed": int(seed), "gradient_checkpointing": bool(checkpointing), "processes": int(processes),
            **({"beta": float(beta)} if dpo else {})}


def build_config(ws: Path, data: dict, template: str, settings: dict) -> TuneConfig | None:
    """The run's TuneConfig (core.requests), or None after showing what is wrong with the data or a setting."""
    try:
        return tune_config(ws, method=data["method"], task=data["task"], train_file=data["train_file"],
                           preference_queue=data["queue"], eval_file=data["eval_path"],
                           input_column=data["input_column"], output_column=data["output_column"],
                           model=data["model"].strip() or BUNDLED_MODEL, template=template, **settings)[0]
    except DataError as e:
        ui.show_data_error(e)
    except ConfigError as e:
        ui.show_setting_error(e)
    return None


def launch(ws: Path, cfg: TuneConfig) -> None:
    run_dir = jobs.create_tune(ws, cfg)
    outcome = jobs.submit(run_dir)
    st.session_state["tune_run_pick"] = run_dir.name
    name = cfg.name or run_dir.name
    if outcome == "started":
        st.success(f"Run **{name}** started. Watch it below; it goes on even if you close the browser.",
                   icon=":material/rocket_launch:")
    else:
        place = job_queue.position(ws, run_dir.name)
        where = f"position {place[0]} of {place[1]}" if place else "next"
        st.info(f"Run **{name}** is queued ({where}): one job computes at a time on a device, and it starts by "
                "itself when the jobs ahead of it finish.", icon=":material/schedule:")


# ---------------------------------------------------------------- measured speed

@st.fragment(run_every=2)
def measuring(folder: Path, config: dict) -> None:
    if jobs.estimate_from(folder, config) is not None:
        st.rerun()  # the full page shows the result
    status = runs.read_status(folder)
    place = job_queue.position(folder.parent.parent, folder.name)
    if place:
        st.info(f"Speed trial queued (position {place[0]} of {place[1]}): it measures alone, after the jobs "
                "ahead of it, so the number holds.", icon=":material/schedule:")
        return
    st.info(f"Measuring speed: {jobs.ESTIMATE_STEPS} real tuning steps with these settings · "
            f"{status.get('phase') or 'starting the worker'} · step {status.get('step') or 0} of "
            f"{jobs.ESTIMATE_STEPS}. Loading the model takes a moment.", icon=":material/speed:")


def speed_result(current: dict) -> None:
    """The last measurement, projected onto the current number of steps."""
    trial = st.session_state.get("tune_estimate")
    if not trial or not Path(trial["folder"]).is_dir():
        return
    folder, measured = Path(trial["folder"]), trial["config"]
    projection = {**measured, **{k: current[k] for k in ("max_iterations", "eval_every") if current.get(k)}}
    result = jobs.estimate_from(folder, projection)
    if result is None:
        measuring(folder, projection)
        return
    if "error" in result:
        st.error(f"**The speed trial failed:** {result['error']}", icon=":material/speed:")
        if result.get("hint"):
            st.info(result["hint"], icon=":material/lightbulb:")
        return
    with st.container(border=True):
        st.markdown("**Measured speed**")
        c = st.columns(3)
        c[0].metric("Seconds per step", f"{result['seconds_per_step']:.2f} s", border=True)
        c[1].metric("Projected total", ui.fmt_duration(result["total_seconds"]), border=True,
                    help=f"{result['steps']} steps, with an eval pass every {projection.get('eval_every')} steps.")
        c[2].metric("Peak memory", f"{result['peak_memory_mb']:,.0f} MB" if result.get("peak_memory_mb") else "–",
                    border=True, help="GPU memory allocated on CUDA, else the worker's resident memory.")
        st.caption(f":material/speed: Measured from {jobs.ESTIMATE_STEPS} real tuning steps with these settings on "
                   f"{result.get('device') or '?'}, {result.get('precision') or '?'} precision: the median step "
                   f"time, the first step (set-up) left out. Projected for {result['steps']} steps.")
        changed = [k for k in SPEED_KEYS if current.get(k) != speed_view(measured).get(k)]
        if changed:
            st.warning(f"Measured with other settings ({', '.join(changed)} changed since): measure again for a "
                       "number that holds.", icon=":material/history:")


def prior_estimate(col, ws: Path, data: dict, settings: dict) -> None:
    """Time before launch, from the pace of the newest finished run with this model, method, batch size
    and device on this machine (measured, not guessed); else a pointer to Measure speed."""
    per_step = queue_overview.step_seconds(ws, {"model": data["model"].strip() or BUNDLED_MODEL,
                                                "method": data["method"], "batch_size": settings["batch_size"],
                                                "device": settings["device"]})
    if per_step:
        col.caption(f":material/schedule: About **{ui.fmt_duration(per_step * settings['steps'])}** for "
                    f"{settings['steps']} steps: {per_step:.1f} s a step, as the last finished run with this model "
                    "and batch size went on this machine (eval passes add a little). **Measure speed** times "
                    "these exact settings.")
    else:
        col.caption(":material/schedule: No finished run with this model and batch size yet: **Measure speed** "
                    "times a few real steps and tells you how long the run will take before you start it.")


def setup_form(ws: Path) -> None:
    """The three setup cards, the launch and measure buttons, and the measured speed."""
    with st.container(border=True):
        st.subheader("1 · Data and task")
        method = st.radio("Method", list(METHOD_NAMES), format_func=METHOD_NAMES.get, horizontal=True,
                          key="tune_method",
                          help="Supervised: learn from prompt → ideal answer examples. Preference (DPO): learn "
                               "which of two answers people preferred, from labeled pairs.")
        data = dpo_data(ws) if method == "dpo" else sft_data()
    if data is None:
        return
    template = template_card(data)
    settings = settings_card(ws, data)
    c1, c2, c3 = st.columns([1.2, 1.2, 4], vertical_alignment="center")
    prior_estimate(c3, ws, data, settings)
    start = c1.button("Start tuning", type="primary", icon=":material/rocket_launch:", width="stretch")
    trial = st.session_state.get("tune_estimate")
    pending = bool(trial) and Path(trial["folder"]).is_dir() and jobs.estimate_from(trial["folder"], trial["config"]) is None
    measure = c2.button("Measure speed", icon=":material/speed:", width="stretch", disabled=pending,
                        help=f"Runs {jobs.ESTIMATE_STEPS} real tuning steps with these settings in the background "
                             "and projects the whole run's time and memory from them.")
    if start or measure:
        cfg = build_config(ws, data, template, settings)
        if cfg is not None and start:
            launch(ws, cfg)
        elif cfg is not None:
            folder = jobs.start_estimate(ws, cfg)
            st.session_state["tune_estimate"] = {"folder": str(folder), "config": cfg.to_dict()}
            st.rerun()  # redraw with the button disabled while the trial runs
    train_file = f"queue:{data['queue']}" if data["queue"] else str(Path(data["train_file"]).resolve())
    speed_result(speed_view({"model": data["model"].strip() or BUNDLED_MODEL, "method": data["method"],
                             "train_file": train_file, "lora": {"rank": settings["lora_rank"]},
                             "max_iterations": settings["steps"], **settings}))
