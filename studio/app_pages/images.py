"""Images: teach a text-to-image model a style or a subject from 5–30 images, as LoRA weights that load
anywhere with pipe.load_lora_weights. Pick the base pipeline, bring the images (checked: sizes, duplicates,
too small), set the trigger phrase and the run; see what it costs here before it starts; follow the loss and
the sample images; then compare base and tuned on the same prompts and seeds."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import jobs
from core.names import ACTIVE_STATES
from studio import cached, image_job_views, image_tune_form, image_views, ui

st.title("Images")
st.caption("LoRA tuning of a diffusion pipeline (Stable Diffusion 1.5 / 2.x / SDXL): a **style** learned as a phrase "
           "(“in golden photo style”), or a **subject** placed in new scenes (“a photo of sks pitcher on a beach”).")
ws = cached.workspace()

with st.container(border=True):
    st.subheader("Base model")
    model, resolution = image_views.pick_model(ws)

with st.container(border=True):
    st.subheader("Training images")
    folder, report = image_views.pick_images(ws, resolution)

if model and folder and report and report["usable"]:
    with st.container(border=True):
        st.subheader("Tune")
        config = image_tune_form.settings_form(folder, model, resolution)
        if config:
            image_tune_form.cost_and_start(ws, config)

st.subheader("Image jobs")
found = jobs.list_jobs(ws, "image_tune")
if not found:
    st.info("No image jobs yet. Pick a model and images above, then start tuning.", icon=":material/info:")
else:
    by_dir = {j["dir"]: j for j in found}
    if st.session_state.get("img_job_next") in by_dir:
        st.session_state["img_job"] = st.session_state.pop("img_job_next")
    ui.seed_choice("img_job", list(by_dir), None)
    chosen = st.selectbox("Job", list(by_dir), key="img_job", format_func=lambda d: ui.job_label(by_dir[d]),
                          help="Newest first.")
    job, job_dir = by_dir[chosen], Path(chosen)
    if job["status"].get("state") in ACTIVE_STATES:
        image_job_views.live_card(job_dir)
    else:
        image_job_views.job_card(job_dir, job["status"])
    with st.container(border=True):
        st.subheader("Base and tuned, side by side")
        image_job_views.compare_view(job_dir)
