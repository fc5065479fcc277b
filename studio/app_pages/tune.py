"""Tune: set up a LoRA tuning run (supervised, or preference tuning with DPO), measure its speed with a
few real steps, launch it into the job queue, and watch it live. The setup form lives in
studio/tune_form.py."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import job_queue, runs
from studio import cached, queue_views, run_views, tune_form, ui

st.title("Tune")
st.caption("Teach a small open model your task with LoRA: a small adapter learns from your examples while "
           "the base model's weights stay as they are. The run goes on in the background, even if you close "
           "the browser.")
ws = cached.workspace()
tune_form.setup_form(ws)

st.subheader("Runs")
if job_queue.queue(ws):
    queue_views.live_queue(ws)
all_runs = runs.list_runs(ws)
if not all_runs:
    st.info("No runs yet. Set one up above and press **Start tuning**.", icon=":material/info:")
else:
    chosen = ui.pick_run("Run", key="tune_run_pick", items=all_runs, states=False,
                         help="Newest first; its state is on its card below. The **Runs** page compares, renames "
                              "and deletes runs.")
    run_views.show_run(Path(chosen["run_dir"]), chosen["status"])
