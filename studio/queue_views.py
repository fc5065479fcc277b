"""The job queue as people watch it: the job on each device now and every job waiting, of every kind,
in the order they will start, with buttons to move or remove a waiting job. The order and the
estimates come from core (job_queue, queue_overview); this module only lays them out."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import job_queue, queue_overview
from studio import ui


def _move(ws: Path, job_id: str, place: int) -> None:
    try:
        job_queue.move(ws, job_id, place)
    except ValueError as e:  # it started (or was removed) meanwhile
        ui.say("warning", str(e))


def _remove(ws: Path, job_id: str) -> None:
    try:
        job_queue.remove(ws, job_id)
    except ValueError as e:
        ui.say("warning", str(e))


def _when(job: dict) -> str:
    if job.get("starts_in_s") is not None:
        return "starts in under a minute" if job["starts_in_s"] < 60 else f"starts in about {ui.fmt_duration(job['starts_in_s'])}"
    return "starts when the jobs ahead finish"


def queue_panel(ws: Path) -> None:
    """Every job on a device now and every job waiting, of every kind, in the order they will start."""
    view = queue_overview.overview(ws)
    if not view["waiting"]:
        return
    ids = [j["id"] for j in view["waiting"]]
    with st.container(border=True):
        st.markdown(f"**Queue** · {len(ids)} waiting · one job computes at a time on each device")
        ui.show_message()
        for j in view["running"]:
            left = f" · about {ui.fmt_duration(j['remaining_s'])} left" if j.get("remaining_s") else ""
            st.caption(f":material/sync: Now on {j['device']}: **{j['name']}** · {j['kind_name']} · "
                       f"{j['progress']}{left}")
        for i, j in enumerate(view["waiting"]):
            row = st.columns([0.5, 5, 0.6, 0.6, 0.6], vertical_alignment="center")
            row[0].markdown(f"**{j['position']}**")
            row[1].markdown(f"{j['name']}  \n:gray[{j['kind_name']} · {j['device']} · {_when(j)} · {j['id']}]")
            row[2].button("", icon=":material/arrow_upward:", key=f"q_up::{j['id']}", disabled=i == 0,
                          on_click=_move, args=(ws, j["id"], i - 1), help="Start it earlier")
            row[3].button("", icon=":material/arrow_downward:", key=f"q_down::{j['id']}",
                          disabled=i == len(ids) - 1, on_click=_move, args=(ws, j["id"], i + 1),
                          help="Start it later")
            row[4].button("", icon=":material/close:", key=f"q_remove::{j['id']}", on_click=_remove,
                          args=(ws, j["id"]), help="Take it out of the queue (it ends as cancelled)")


@st.fragment(run_every=3)
def live_queue(ws: Path) -> None:
    """The queue panel, refreshed while jobs wait (a job leaves it when the one before it ends)."""
    queue_panel(ws)
    if not job_queue.queue(ws):
        st.rerun()


@st.fragment(run_every=5)
def sidebar_work(ws: Path) -> None:
    """Background work, in the sidebar of every page: what computes now (phase, progress, time left) and
    how much waits, with a way to the Runs page where each job has its card."""
    view = queue_overview.overview(ws)
    if not view["running"] and not view["waiting"]:
        return
    lines = []
    for j in view["running"]:
        left = f" · about {ui.fmt_duration(j['remaining_s'])} left" if j.get("remaining_s") else ""
        phase = f" · {j['phase']}" if j.get("phase") else ""
        lines.append(f":material/sync: **{j['name']}**  \n{j['kind_name']} · {j['progress']}{phase}{left}")
    if view["waiting"]:
        lines.append(f":material/schedule: {len(view['waiting'])} waiting in the queue")
    st.caption("**Background work**  \n" + "  \n".join(lines))
    st.page_link("app_pages/runs.py", label="Runs and jobs", icon=":material/history:")
