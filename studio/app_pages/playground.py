"""Playground: the base model and a tuned run (plus, if asked, its checkpoints or other runs) answer the
same input side by side, through the run's own prompt template, streamed token by token; a pair of
answers can be saved for preference labelling. The panes and helpers live in studio/playground_views.py."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import runs
from core.config import ConfigError, GenerationConfig
from core.models import ModelError
from core.templates import render_prompt, template_for
from studio import cached, ui
from studio import playground_views as views

st.title("Playground")
st.caption("Ask the base model and your tuned model the same thing and read the answers side by side. Both get "
           "the run's prompt template, so the difference you see is what tuning changed.")
ws = cached.workspace()

with st.container(border=True):
    run, config, model_name = ui.pick_run_and_model(
        ws, key="pg", run_help="Finished runs with a saved adapter (succeeded or cancelled).")
    template = template_for(config or None)
    if run:
        with st.expander("The run's prompt template"):
            st.code(template, language=None, wrap_lines=True)
    prompt = st.text_area("Input", key="pg_prompt", height=150, on_change=views.clear_reference,
                          placeholder="The text that goes into {input_text}, e.g. a package description to classify.")
    if run:
        st.button("Try an example from the run's data", icon=":material/shuffle:", on_click=views.fill_example,
                  args=(config,))
    if st.session_state.get("pg_example_error"):
        st.error(st.session_state.pop("pg_example_error"))
    if st.session_state.get("pg_reference"):
        st.caption(f"Expected answer in the data: **{st.session_state['pg_reference']}**")
    extras_available = views.extra_choices(ws, run, model_name)
    extras = st.multiselect("More panes", list(extras_available), key="pg_extra",
                            placeholder="Checkpoints of this run, or other runs on the same base model",
                            help="Each pane answers the same input with its own adapter and the template above.")
    history_slot = st.empty()  # filled last, so an input generated in this run is already listed
views.busy_note(ws)

with st.expander("Generation settings", icon=":material/tune:"):
    c = st.columns(4)
    max_tokens = c[0].number_input("Max output tokens", 1, 2048, value=128, key="pg_max_tokens")
    temperature = c[1].number_input("Temperature", 0.0, 2.0, value=0.0, step=0.1, key="pg_temperature",
                                    help="0 is greedy: the same input always gives the same answer.")
    top_k = c[2].number_input("Top-k", 0, 1000, value=40, key="pg_top_k", help="Used when temperature > 0.")
    top_p = c[3].number_input("Top-p", 0.01, 1.0, value=0.95, step=0.05, key="pg_top_p",
                              help="Used when temperature > 0.")
    stops = st.text_input("Stop sequences", key="pg_stops", placeholder="e.g.  ###  |  \\n\\n",
                          help="The answer is cut at the first of these. Separate several with |; "
                               "write \\n for a line break.")

b1, b2, b3 = st.columns([1, 1, 3], vertical_alignment="bottom")
clicked = b1.button("Generate", type="primary", icon=":material/play_arrow:", width="stretch")
seed = b2.number_input("Seed", 0, 2**31 - 1, value=0, key="pg_seed",
                       help="With temperature > 0, the same seed and input give the same answer again.")
show_prompt = b3.toggle("Show the rendered prompt", key="pg_show_prompt")

result = st.session_state.get("pg_result")
if clicked:
    if not prompt.strip():
        st.warning("Write an input first.")
    else:
        try:
            gen = GenerationConfig(max_output_tokens=int(max_tokens), temperature=float(temperature),
                                   top_k=int(top_k), top_p=float(top_p), seed=int(seed),
                                   stop_sequences=[s.strip().replace("\\n", "\n") for s in stops.split("|")])
            adapter = runs.adapter_dir(run["run_dir"]) if run else None
            with st.spinner("Loading the model (the first time can take a minute)…"):
                model, tok, device = cached.load_model(model_name, adapter)
            rendered = render_prompt(tok, template, prompt)
            views.remember(prompt)
            result = {"results": {}, "prompt": prompt, "rendered": rendered, "model": model_name,
                      "run_id": run["run_id"] if run else None, "device": device,
                      "run_name": (run["status"].get("name") or run["run_id"]) if run else None,
                      "extra": {label: extras_available[label] for label in extras},
                      "settings": {"temperature": gen.temperature, "top_k": gen.top_k, "top_p": gen.top_p,
                                   "seed": gen.seed, "max_output_tokens": gen.max_output_tokens}}
            slots = views.panes(result)
            with cached.generation_lock():  # disable_adapter() briefly changes the shared model
                if run:
                    with model.disable_adapter():
                        result["results"]["base"] = views.stream_into(slots["base"], model, tok, rendered, gen)
                    result["results"]["tuned"] = views.stream_into(slots["tuned"], model, tok, rendered, gen)
                else:
                    result["results"]["base"] = views.stream_into(slots["base"], model, tok, rendered, gen)
            for label, adapter_dir in result["extra"].items():
                with st.spinner(f"Loading {label}…"):
                    other, other_tok, _ = cached.load_model(model_name, Path(adapter_dir))
                with cached.generation_lock():
                    result["results"][label] = views.stream_into(slots[label], other, other_tok, rendered, gen)
            st.session_state["pg_result"] = result
            views.result_footer(ws, result, show_prompt)
        except (ModelError, ConfigError, ValueError, OSError, RuntimeError) as e:
            st.error(f"**Could not generate:** {e}", icon=":material/error:")
elif result:
    if result["prompt"] != prompt or result["run_id"] != (run["run_id"] if run else None):
        st.caption(":material/history: These answers are for an earlier input or run; press Generate to refresh.")
    slots = views.panes(result)
    for name, r in result["results"].items():
        views.show_answer(slots[name], r)
    views.result_footer(ws, result, show_prompt)
else:
    st.info("Pick a run, write an input and press **Generate**. Without a run, the base model answers the "
            "input as it is. Answers stream in as they are written.", icon=":material/chat:")

with history_slot.container():
    views.history_list()
