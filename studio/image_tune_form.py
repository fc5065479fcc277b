"""The Images page's tuning form: style or subject, the trigger phrase (with the class word and prior
preservation for a subject), steps, learning rate, rank, samples, the compare prompts prefilled from the
trigger; and what the run costs here before it starts: a measured speed trial's projection, and on a CPU a
confirmation before a long run."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import job_queue, jobs, runs
from core.config import ConfigError
from core.images.config import MAX_COMPARE_PROMPTS, MODE_NAMES, MODES, ImageTuneConfig, compare_prompts_for
from core.images.trial import LONG_RUN_SECONDS, TRIAL_STEPS, matching_trial
from core.names import ACTIVE_STATES
from studio import ui

TRIGGER_EXAMPLES = {"style": "in golden photo style", "subject": "sks pitcher"}


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.replace(",", " ").split()]
    except ValueError:
        raise ConfigError(f"compare seeds must be whole numbers separated by commas, got `{text}`") from None
    return seeds


def settings_form(images: str, model: str, resolution: int) -> ImageTuneConfig | None:
    """The settings as a config (None with the problem shown when they cannot work)."""
    ui.seed_choice("img_mode", list(MODES), "subject")
    mode = st.radio("What to learn", MODES, format_func=MODE_NAMES.get, horizontal=True, key="img_mode")
    c1, c2 = st.columns(2)
    trigger = c1.text_input("Trigger phrase" if mode == "style" else "Subject (identifier + class word)",
                            value=TRIGGER_EXAMPLES[mode], key=f"img_trigger::{mode}",
                            help="Style: the phrase that calls up the look. Subject: a rare word plus what it is "
                                 "(“sks pitcher”), so prompts can place it: “a photo of sks pitcher on a beach”.")
    class_word, prior, prior_n = "", False, 20
    if mode == "subject":
        words = trigger.split()
        class_word = c2.text_input("Class word", value=words[-1] if words else "", key=f"img_class::{trigger}",
                                   help="What the subject is (pitcher, dog, backpack).")
        p1, p2 = st.columns([2, 1])
        prior = p1.checkbox("Prior preservation", key="img_prior",
                            help="The base model first draws “a photo of <class word>” images, learned alongside, so "
                                 "every pitcher does not turn into yours. Costs those images and a double step.")
        prior_n = p2.number_input("Prior images", 1, 200, 20, key="img_prior_n", disabled=not prior)
    else:
        c2.caption("Every training image is captioned “a picture <trigger phrase>”; prompts with the phrase get the look.")
    c3, c4, c5, c6 = st.columns(4)
    steps = c3.number_input("Steps", 1, 100_000, ImageTuneConfig.max_iterations, key="img_steps",
                            help="The DreamBooth-LoRA recipe uses about 100 per training image.")
    rate = c4.number_input("Learning rate", 1e-6, 1e-2, ImageTuneConfig.learning_rate, step=1e-5, format="%.1e",
                           key="img_lr", help="Constant; the recipes' 1e-4.")
    rank = c5.number_input("LoRA rank", 1, 256, ImageTuneConfig.rank, key="img_rank",
                           help="Size of the update of the UNet's attention projections; 4–16 is usual.")
    every = c6.number_input("Sample every", 0, 100_000, ImageTuneConfig.sample_every, key="img_every",
                            help="Steps between sample images from the first compare prompt (0: none).")
    defaults = "\n".join(compare_prompts_for(mode, trigger)) if trigger.strip() else ""
    p1, p2 = st.columns([3, 1])
    prompts = p1.text_area(f"Compare prompts (one a line, up to {MAX_COMPARE_PROMPTS})", value=defaults,
                           key=f"img_prompts::{mode}::{trigger}", height=120,
                           help="After tuning, base and tuned draw these with the same seeds, side by side.")
    seeds = p2.text_input("Seeds", value="0, 1", key="img_seeds", help="The same seed gives both the same start.")
    try:
        return ImageTuneConfig.from_trigger(
            images, mode, trigger, class_word=class_word, prior_preservation=prior, prior_images=int(prior_n),
            model=model, max_iterations=int(steps), learning_rate=float(rate), rank=int(rank), resolution=resolution,
            sample_every=int(every), compare_prompts=prompts.splitlines(), compare_seeds=_seeds(seeds))
    except ConfigError as e:
        ui.show_setting_error(e)
        return None


def _start_trial(ws: Path, config: ImageTuneConfig) -> None:
    folder = jobs.create_image_tune(ws, config, trial=True)
    jobs.submit(folder)
    ui.say("toast", "Speed trial started: a few real steps and one image.", key="img_message")


def _start(ws: Path, config: ImageTuneConfig) -> None:
    job_dir = jobs.create_image_tune(ws, config)
    outcome = jobs.submit(job_dir)
    st.session_state["img_job_next"] = str(job_dir)
    ui.say("toast", f"Image job {job_dir.name} {'started' if outcome == 'started' else 'queued behind the jobs ahead'}",
           key="img_message")


@st.fragment(run_every=2)
def _trial_progress(folder: str) -> None:
    status = runs.read_status(folder)
    st.progress(min(1.0, int(status.get("step") or 0) / TRIAL_STEPS),
                text=f"Speed trial: {status.get('phase') or 'waiting for its turn'}")
    if status.get("state") not in ACTIVE_STATES:
        st.rerun()


def cost_and_start(ws: Path, config: ImageTuneConfig) -> None:
    """What the run costs here, then Start: on a CPU only after a speed trial, and a long run confirmed."""
    ui.show_message("img_message")
    on_cpu = job_queue.device_of(config.to_dict()) == "cpu"
    trial = matching_trial(ws, config.to_dict())
    projection = trial and trial["projection"]
    if trial and trial["state"] in ACTIVE_STATES:
        _trial_progress(trial["dir"])
    elif trial and trial["state"] == "failed":
        ui.show_failure("The speed trial", trial["status"])
    elif projection:
        hours = projection["total_seconds"] / 3600
        c1, c2 = st.columns([1, 3], vertical_alignment="center")
        c1.metric("Projected time here", ui.fmt_duration(projection["total_seconds"]), border=True)
        c2.caption(f"Measured on {projection['device']}: {projection['seconds_per_step']:.2f} s a step, "
                   f"{projection['seconds_per_image']:.1f} s an image. " + ", ".join(
                       f"{k} {ui.fmt_duration(v)}" for k, v in projection["parts"].items()) + f" (≈ {hours:.2f} h).")
    if not trial or trial["state"] == "failed":
        why = ("No GPU here: on a CPU a real pipeline takes seconds to minutes a step, so time it first."
               if on_cpu else "Optional on a GPU: a few real steps and one image give the projected time.")
        st.caption(f":material/timer: {why}")
        st.button("Time it here (speed trial)", icon=":material/timer:", key="img_trial", on_click=_start_trial,
                  args=(ws, config))
    ready = not on_cpu or bool(projection)
    long_run = bool(projection) and projection["total_seconds"] > LONG_RUN_SECONDS
    confirmed = True
    if long_run:
        confirmed = st.checkbox(f"Start anyway: this run takes about {ui.fmt_duration(projection['total_seconds'])} "
                                "here", key="img_confirm")
    st.button("Start tuning", type="primary", icon=":material/model_training:", key="img_start",
              disabled=not (ready and confirmed), on_click=_start, args=(ws, config),
              help=None if ready else "Run the speed trial first: it says how long the run takes here.")
