"""The Playground page's parts: the input helpers (an example from the run's data, the recent inputs),
the answer panes and their streaming, the extra panes (checkpoints, other runs), and saving a tuned/base
pair for preference labelling. Generation is core's (core.generate, called as a module attribute so
it can be swapped in tests); this module only lays it out."""
from __future__ import annotations

import random
from pathlib import Path

import streamlit as st

from core import generate, job_queue, jobs, preferences, runs
from core.config import GenerationConfig
from core.data import DataError
from core.names import JOB_KIND_NAMES
from studio import cached, charts, ui

HISTORY = 20


def fill_example(config: dict) -> None:
    """Put a random example from the run's eval data (else its training data) into the input box."""
    path = config.get("eval_file") or config.get("train_file")
    try:
        ds = cached.load_dataset(path, config.get("input_column"), config.get("output_column"))
    except DataError as e:
        st.session_state["pg_example_error"] = str(e)
        return
    example = random.choice(ds.examples)
    st.session_state["pg_prompt"] = example["input_text"]
    st.session_state["pg_reference"] = example["output_text"]


def clear_reference() -> None:
    st.session_state.pop("pg_reference", None)


def reuse(prompt: str) -> None:
    st.session_state["pg_prompt"] = prompt
    clear_reference()


def remember(prompt: str) -> None:
    """This session's inputs, newest first, without repeats."""
    history = [p for p in st.session_state.get("pg_history", []) if p != prompt]
    st.session_state["pg_history"] = [prompt, *history][:HISTORY]


def history_list() -> None:
    history = st.session_state.get("pg_history", [])
    if not history:
        return
    with st.expander(f"Recent inputs ({len(history)})", icon=":material/history:"):
        for i, text in enumerate(history):
            one_line = " ".join(text.split())
            st.button(one_line if len(one_line) <= 110 else one_line[:110] + " …", key=f"pg_hist_{i}",
                      type="tertiary", on_click=reuse, args=(text,), help="Put this input back in the box.")


def stats_line(r: dict) -> str:
    n, first = r["new_tokens"], r.get("first_token_s")
    parts = [f":material/timer: {r['seconds']:.2f} s"]
    parts += [f"first token {first:.2f} s"] if first is not None else []
    parts += [f"{n} token{'' if n == 1 else 's'}", f"{r.get('tokens_per_s') or 0.0:,.1f} tokens/s"]
    return " · ".join(parts)


def answer_pane(title: str, color: str):
    """A bordered pane; returns (text slot, stats slot) to fill, live while streaming or at once."""
    with st.container(border=True):
        st.markdown(f"<span style='color:{color}'>●</span> **{title}**", unsafe_allow_html=True)
        return st.empty(), st.empty()


def show_answer(slots, r: dict) -> None:
    text, stats = slots
    text.markdown(r["text"] or "_(empty answer)_")
    stats.caption(stats_line(r))


def stream_into(slots, model, tok, rendered: str, gen: GenerationConfig) -> dict:
    """Stream one answer into its pane; returns stream_text's closing statistics."""
    text, shown = slots[0], ""
    for piece in generate.stream_text(model, tok, rendered, gen):
        if isinstance(piece, dict):
            show_answer(slots, piece)
            return piece
        shown += piece
        text.markdown(shown + " ▌")
    return {"text": shown, "new_tokens": 0, "seconds": 0.0, "first_token_s": None, "tokens_per_s": 0.0}


EXTRA_COLORS = ["#0EA5E9", "#F59E0B", "#10B981", "#EC4899", "#8B5CF6", "#64748B"]


def extra_choices(ws: Path, run: dict | None, model_name: str) -> dict[str, str]:
    """More panes for the same input: the selected run's checkpoints and other finished runs on the
    same base model. {label: adapter folder}."""
    out = {}
    if run:
        for c in runs.checkpoints(run["run_dir"]):
            if (c / "adapter_config.json").exists():
                out[f"{run['run_id']} · step {runs.checkpoint_step(c)}"] = str(c)
    for r in runs.finished_runs(ws):
        if r["run_id"] != (run or {}).get("run_id") and (r["config"].get("model") or "") == model_name:
            out[f"{r['status'].get('name') or r['run_id']} (run {r['run_id']})"] = str(runs.adapter_dir(r["run_dir"]))
    return out


def busy_note(ws: Path) -> None:
    """The Playground answers at once, beside any job: say so while one computes."""
    busy = [j for j in job_queue.started(ws) if runs.read_status(ws / j["job"]).get("state") == "running"]
    if busy:
        kind = JOB_KIND_NAMES.get(jobs.read_job(ws / busy[0]["job"]).get("kind"), "background job")
        st.caption(f":material/sync: A job is running on this machine ({kind.lower()}); the Playground answers "
                   "beside it, so both run a little slower.")


def panes(result: dict):
    """The answer panes of a result, side by side (up to three a row): {key: slots}."""
    specs = [("base", f"Base model — {result['model']}", charts.BASE_COLOR)]
    if result["run_id"]:
        specs.append(("tuned", f"Tuned — {result.get('run_name') or result['run_id']}", charts.TUNED_COLOR))
    specs += [(label, label, EXTRA_COLORS[i % len(EXTRA_COLORS)]) for i, label in enumerate(result.get("extra", {}))]
    slots = {}
    for row in range(0, len(specs), 3):
        cols = st.columns(min(3, len(specs)) if len(specs) > 1 else 1, gap="medium")
        for col, (key, title, color) in zip(cols, specs[row:row + 3]):
            with col:
                slots[key] = answer_pane(title, color)
    return slots


def _save(ws: Path, result: dict, target: str) -> None:
    res = result["results"]
    try:
        ids = preferences.add_pairs(ws, target, [{
            "prompt": result["prompt"], "answer_a": res["tuned"]["text"], "answer_b": res["base"]["text"],
            "source_a": f"tuned:{result['run_id']}", "source_b": f"base:{result['model']}",
            "meta": {"from": "playground", **result.get("settings", {})}}])
    except ValueError as e:
        st.session_state["pg_save_error"] = str(e)
    else:
        result["saved_to"] = f"{target} (item {ids[0]})"


def save_pair(ws: Path, result: dict) -> None:
    """The tuned and base answers as one preference pair (answer A = tuned, B = base) in a queue."""
    with st.container(border=True):
        st.markdown("**Save as preference pair**")
        st.caption("Labelers on the Preferences page see both answers blind and pick the better one; curated "
                   "pairs train a DPO run.")
        target = ui.queue_target("pg_queue", [q["name"] for q in preferences.list_queues(ws)], "playground")
        st.button("Save pair", icon=":material/bookmark_add:", key="pg_save", disabled=bool(result.get("saved_to")),
                  on_click=_save, args=(ws, result, target))
        if st.session_state.get("pg_save_error"):
            st.error(f"**Could not save the pair:** {st.session_state.pop('pg_save_error')}", icon=":material/error:")
        if result.get("saved_to"):
            st.success(f"Saved to queue **{result['saved_to']}**.", icon=":material/check_circle:")


def result_footer(ws: Path, result: dict, show_prompt: bool) -> None:
    st.caption(f"Generated on {result['device']}.")
    if show_prompt:
        with st.container(border=True):
            st.markdown("**Rendered prompt** (template filled in and wrapped in the chat template)")
            st.code(result["rendered"], language=None, wrap_lines=True)
    if "tuned" in result["results"]:
        save_pair(ws, result)
