"""An image job's card (state, progress, the live loss curve and the sample images as they come, where the
LoRA weights are) and the compare view: the same prompts and seeds through the base and the tuned
pipeline side by side, with CLIP scores base vs tuned where a scoring model was found."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core import jobs, runs
from core.images.generate import COMPARE_DIR, GRID_FILE, read_compare
from core.images.models import IMAGE_JOB_PREFIX, LORA_DIR, LORA_FILE
from core.names import ACTIVE_STATES, SAMPLES_FILE
from studio import charts, ui


def _samples(job_dir: Path) -> None:
    samples = [s for s in runs.read_jsonl(job_dir / SAMPLES_FILE) if (job_dir / str(s.get("image"))).is_file()]
    if not samples:
        st.caption("A sample image appears every few steps.")
        return
    st.caption(f"“{samples[-1].get('prompt', '')}”, the same seed each time")
    shown = samples[-4:]
    for col, s in zip(st.columns(4), shown):
        col.image(str(job_dir / s["image"]), caption=f"step {s['step']}", width="stretch")


def job_card(job_dir: Path, status: dict) -> None:
    state = status.get("state")
    config = jobs.read_job(job_dir).get("config") or {}
    with st.container(border=True):
        head, badge = st.columns([5, 1], vertical_alignment="center")
        head.markdown(f"**{status.get('name') or job_dir.name}**")
        head.caption(" · ".join(str(x) for x in (
            f"“{config.get('instance_prompt')}”", Path(str(config.get("model"))).name, f"{config.get('max_iterations')} steps",
            f"lr {config.get('learning_rate')}", f"rank {config.get('rank')}", f"{config.get('resolution')} px",
            status.get("device"), job_dir.name) if x))
        with badge:
            ui.status_badge(state)
        if state == "failed":
            ui.show_failure("The job", status)
        if state in ACTIVE_STATES:
            if not jobs.cancel_requested(job_dir):
                st.button("Cancel", icon=":material/stop_circle:", key=f"img_cancel::{job_dir.name}",
                          on_click=jobs.cancel, args=(job_dir,), help="Stops after the current step and saves the LoRA.")
            ui.step_progress(job_dir, status)
        left, right = st.columns(2)
        with left:
            st.markdown("**Loss** (noise prediction)")
            fig = charts.train_loss_figure(runs.read_metrics(job_dir))
            ui.chart(fig, key=f"img_loss::{job_dir.name}") if fig is not None else st.caption("The loss appears after the first step.")
        with right:
            st.markdown("**Samples**")
            _samples(job_dir)
        if (job_dir / LORA_DIR / LORA_FILE).is_file():
            st.caption(f":material/folder: LoRA weights: `{job_dir / LORA_DIR}` — outside the studio: "
                       f"`pipe.load_lora_weights(\"{job_dir / LORA_DIR}\")`; here: `--lora {IMAGE_JOB_PREFIX}{job_dir.name}`")


@st.fragment(run_every=2)
def live_card(job_dir: Path) -> None:
    status = runs.read_status(job_dir)
    job_card(job_dir, status)
    if status.get("state") not in ACTIVE_STATES:
        st.rerun()


def compares(job_dir: Path) -> list[tuple[str, Path, dict]]:
    """The job's compare grids, newest first: the one made after tuning, then those made later (CLI)."""
    found = []
    for folder in sorted((job_dir / "compares").glob("*"), reverse=True) + [job_dir / COMPARE_DIR]:
        result = read_compare(folder)
        if result:
            found.append((str(result.get("created", ""))[:16].replace("T", " "), folder, result))
    return found


def _scores(scores: dict) -> None:
    if not scores.get("available"):
        st.caption(f":material/info: {scores.get('note', 'No scores.')}")
        return
    rows = [{"Score": title, "Base": scores["base"].get(key), "Tuned": scores["tuned"].get(key), "What it measures": what}
            for key, title, what in (
                ("fidelity", "Subject fidelity", "CLIP image–image similarity to the training images"),
                ("alignment", "Prompt alignment", "CLIP text–image similarity to the prompt"))
            if scores["base"].get(key) is not None]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("Base", "Tuned")})
    st.caption(f"Scored with `{Path(scores['model']).name}`; higher is closer.")


def compare_view(job_dir: Path) -> None:
    found = compares(job_dir)
    if not found:
        st.caption("The compare grid is drawn when tuning ends (`studio images compare --job "
                   f"{job_dir.name} --prompt …` draws more).")
        return
    labels = {str(folder): f"{when} · {len(result['rows'])} images each" for when, folder, result in found}
    chosen = st.selectbox("Compare", list(labels), format_func=labels.get, key=f"img_compare::{job_dir.name}") \
        if len(found) > 1 else str(found[0][1])
    folder, result = next((f, r) for _, f, r in found if str(f) == chosen)
    _scores(result.get("scores") or {})
    widths = [3, 2, 2, 1]  # the last column keeps the pictures at a size where a grid of them reads at a glance
    head = st.columns(widths)
    head[1].markdown("**Base**")
    head[2].markdown("**Tuned**")
    for row in result["rows"]:
        cols = st.columns(widths, vertical_alignment="center")
        cols[0].markdown(f"{row['prompt']}  \n:gray[seed {row['seed']}]")
        for col, side in zip(cols[1:3], ("base", "tuned")):
            col.image(str(folder / row[side]), width="stretch")
    st.caption(f":material/grid_on: The whole grid as one image: `{folder / GRID_FILE}`")
