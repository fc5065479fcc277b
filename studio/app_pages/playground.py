"""Playground: the base model and a tuned run answer the same input side by side, through the run's
own prompt template."""
from __future__ import annotations

import random
from pathlib import Path

import streamlit as st

from core import runs
from core.config import ConfigError, GenerationConfig
from core.data import DataError
from core.generate import generate_texts
from core.models import ModelError
from core.templates import PLACEHOLDER, render_prompt
from studio import charts, ui


def fill_example(config: dict) -> None:
    """Put a random example from the run's eval data (else its training data) into the input box."""
    path = config.get("eval_file") or config.get("train_file")
    try:
        ds = ui.load_dataset(path, config.get("input_column"), config.get("output_column"))
    except DataError as e:
        st.session_state["pg_example_error"] = str(e)
        return
    example = random.choice(ds.examples)
    st.session_state["pg_prompt"] = example["input_text"]
    st.session_state["pg_reference"] = example["output_text"]


def clear_reference() -> None:
    st.session_state.pop("pg_reference", None)


def answer_card(title: str, result: dict, color: str) -> None:
    with st.container(border=True):
        st.markdown(f"<span style='color:{color}'>●</span> **{title}**", unsafe_allow_html=True)
        st.markdown(result["text"] or "_(empty answer)_")
        secs = result["seconds"]
        rate = result["new_tokens"] / secs if secs else 0.0
        n = result["new_tokens"]
        st.caption(f":material/timer: {secs:.2f} s · {n} token{'' if n == 1 else 's'} · {rate:,.1f} tokens/s")


st.title("Playground")
st.caption("Ask the base model and your tuned model the same thing and read the answers side by side. Both get "
           "the run's prompt template, so the difference you see is what tuning changed.")
ws = ui.workspace()

with st.container(border=True):
    run, config, model_name = ui.pick_run_and_model(
        ws, key="pg", run_help="Finished runs with a saved adapter (succeeded or cancelled).")
    template = config.get("template") or PLACEHOLDER
    if run:
        with st.expander("The run's prompt template"):
            st.code(template, language=None, wrap_lines=True)
    prompt = st.text_area("Input", key="pg_prompt", height=150, on_change=clear_reference,
                          placeholder="The text that goes into {input_text}, e.g. a package description to classify.")
    if run:
        st.button("Try an example from the run's data", icon=":material/shuffle:", on_click=fill_example,
                  args=(config,))
    if st.session_state.get("pg_example_error"):
        st.error(st.session_state.pop("pg_example_error"))
    if st.session_state.get("pg_reference"):
        st.caption(f"Expected answer in the data: **{st.session_state['pg_reference']}**")

with st.expander("Generation settings", icon=":material/tune:"):
    c = st.columns(5)
    max_tokens = c[0].number_input("Max output tokens", 1, 2048, value=128, key="pg_max_tokens")
    temperature = c[1].number_input("Temperature", 0.0, 2.0, value=0.0, step=0.1, key="pg_temperature",
                                    help="0 is greedy: the same input always gives the same answer.")
    top_k = c[2].number_input("Top-k", 0, 1000, value=40, key="pg_top_k", help="Used when temperature > 0.")
    top_p = c[3].number_input("Top-p", 0.01, 1.0, value=0.95, step=0.05, key="pg_top_p",
                              help="Used when temperature > 0.")
    seed = c[4].number_input("Seed", 0, 2**31 - 1, value=0, key="pg_seed")
    stops = st.text_input("Stop sequences", key="pg_stops", placeholder="e.g.  ###  |  \\n\\n",
                          help="The answer is cut at the first of these. Separate several with |; "
                               "write \\n for a line break.")

b1, b2 = st.columns([1, 4], vertical_alignment="center")
clicked = b1.button("Generate", type="primary", icon=":material/play_arrow:", width="stretch")
show_prompt = b2.toggle("Show the rendered prompt", key="pg_show_prompt")

if clicked:
    if not prompt.strip():
        st.warning("Write an input first.")
    else:
        try:
            gen = GenerationConfig(max_output_tokens=int(max_tokens), temperature=float(temperature),
                                   top_k=int(top_k), top_p=float(top_p), seed=int(seed),
                                   stop_sequences=[s.strip().replace("\\n", "\n") for s in stops.split("|")])
            adapter = Path(run["run_dir"]) / "adapter" if run else None
            with st.spinner("Loading the model (the first time can take a minute)…"):
                model, tok, device = ui.load_model(model_name, adapter)
            rendered = render_prompt(tok, template, prompt)
            results = {}
            with st.spinner("Generating…"), ui.generation_lock():
                if run:
                    with model.disable_adapter():
                        stats: dict = {}
                        results["base"] = {"text": generate_texts(model, tok, [rendered], gen, stats=stats)[0], **stats}
                    stats = {}
                    results["tuned"] = {"text": generate_texts(model, tok, [rendered], gen, stats=stats)[0], **stats}
                else:
                    stats = {}
                    results["base"] = {"text": generate_texts(model, tok, [rendered], gen, stats=stats)[0], **stats}
            st.session_state["pg_result"] = {"results": results, "prompt": prompt, "rendered": rendered,
                                             "model": model_name, "run_id": run["run_id"] if run else None,
                                             "device": device}
        except (ModelError, ConfigError, ValueError, OSError, RuntimeError) as e:
            st.error(f"**Could not generate:** {e}", icon=":material/error:")

result = st.session_state.get("pg_result")
if result:
    if result["prompt"] != prompt or result["run_id"] != (run["run_id"] if run else None):
        st.caption(":material/history: These answers are for an earlier input or run; press Generate to refresh.")
    if show_prompt:
        with st.container(border=True):
            st.markdown("**Rendered prompt** (template filled in and wrapped in the chat template)")
            st.code(result["rendered"], language=None, wrap_lines=True)
    res = result["results"]
    if "tuned" in res:
        left, right = st.columns(2, gap="medium")
        with left:
            answer_card(f"Base model — {result['model']}", res["base"], charts.BASE_COLOR)
        with right:
            answer_card(f"Tuned — {result['run_id']}", res["tuned"], charts.TUNED_COLOR)
    else:
        answer_card(f"Base model — {result['model']}", res["base"], charts.BASE_COLOR)
    st.caption(f"Generated on {result['device']}.")
elif not clicked:
    st.info("Pick a run, write an input and press **Generate**. Without a run, the base model answers the "
            "input as it is.", icon=":material/chat:")
