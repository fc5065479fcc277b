"""The Preferences page's candidate generation: two answers per prompt from two runs or models (or one
model at two temperatures), produced by a background job into a labelling queue, with its progress and
outcome. The job itself is core's (core.jobs); this module only lays it out."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import job_queue, jobs, runs
from core.config import BUNDLED_MODEL, CandidatesConfig, ConfigError
from core.names import ACTIVE_STATES
from studio import ui


def _side_options(ws: Path) -> dict[str, dict]:
    options = {f"Base model ({BUNDLED_MODEL})": {"model": BUNDLED_MODEL}}
    for r in runs.finished_runs(ws):
        options[f"Run {ui.run_label(r)}"] = {"run": r["run_id"]}
    return options


def _start_candidates(ws: Path, queue: str, options: dict) -> None:
    a = {**options[st.session_state["pf_gen_a"]], "temperature": st.session_state["pf_gen_ta"], "seed": 0}
    b = {**options[st.session_state["pf_gen_b"]], "temperature": st.session_state["pf_gen_tb"], "seed": 1}
    try:
        cfg = CandidatesConfig(prompts=str(st.session_state.get("pf_gen_prompts")), queue=queue, a=a, b=b,
                               limit=int(st.session_state["pf_gen_limit"]))
    except ConfigError as e:
        st.session_state["pf_gen_error"] = str(e)
        return
    jobs.submit(jobs.create_candidates(ws, cfg))


def _candidates_progress(ws: Path, queue: str) -> None:
    """The newest candidate-pairs job of this labeling queue, wherever it was started from."""
    latest = next((j for j in jobs.list_jobs(ws, "candidates") if j["config"].get("queue") == queue), None)
    if latest is None:
        return
    if latest["status"].get("state") in ACTIVE_STATES:
        _candidates_live(latest["dir"])
    else:
        _candidates_outcome(latest["dir"], latest["status"])


@st.fragment(run_every=2)
def _candidates_live(out_dir: str) -> None:
    status = runs.read_status(out_dir)
    if status.get("state") not in ACTIVE_STATES:
        st.rerun()
    done, total = int(status.get("done") or 0), int(status.get("total") or 0)
    place = job_queue.position(Path(out_dir).parent.parent, Path(out_dir).name)
    text = (f"Waiting: position {place[0]} of {place[1]} in the queue (one job computes at a time)" if place
            else f"{done} of {total} answers" if total else "loading the models…")
    st.progress(done / total if total else 0.0, text=text)


def _candidates_outcome(out_dir: str, status: dict) -> None:
    state = status.get("state")
    if state == "succeeded":
        st.success(f"Added **{status.get('pairs', 0)}** pairs to queue **{status.get('queue')}** "
                   "(pairs with identical answers are left out).", icon=":material/check_circle:")
    elif state == "failed":
        st.error(f"Generating candidates failed: {status.get('error', 'see the log')}")
        st.code(runs.log_tail(out_dir, 15) or "(no log)", language=None)
    elif state == "cancelled":
        st.caption("The last candidate generation for this queue was cancelled.")


def generate_candidates(ws: Path, queue: str) -> None:
    """Two answers per prompt from two models/runs or two temperatures, as a background job."""
    with st.container(border=True):
        st.markdown("**Generate candidate pairs**")
        st.caption("Two answers per prompt, from two runs or models, or one model at two temperatures; they "
                   "go into this queue to be labelled blind. It runs in the background.")
        prompts = ui.pick_dataset("Prompts", key="pf_gen_prompts",
                                  help="Any file with a prompt column (input_text, prompt or text).")
        options = _side_options(ws)
        c1, c2, c3, c4 = st.columns([3, 1, 3, 1])
        c1.selectbox("Candidate A from", list(options), key="pf_gen_a")
        c2.number_input("Temperature A", 0.0, 2.0, 0.0, 0.1, key="pf_gen_ta")
        c3.selectbox("Candidate B from", list(options), key="pf_gen_b")
        c4.number_input("Temperature B", 0.0, 2.0, 0.9, 0.1, key="pf_gen_tb")
        c5, c6 = st.columns([1, 3], vertical_alignment="bottom")
        c5.number_input("Prompts", 1, 10_000, 20, key="pf_gen_limit", help="The first N prompts of the file.")
        c6.button("Generate", icon=":material/auto_awesome:", key="pf_gen_start", disabled=prompts is None,
                  on_click=_start_candidates, args=(ws, queue, options))
        if st.session_state.get("pf_gen_error"):
            st.error(f"**Setting problem:** {st.session_state.pop('pf_gen_error')}", icon=":material/tune:")
        _candidates_progress(ws, queue)
