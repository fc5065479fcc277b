"""Datasets: start from a sample or upload a file, check it exactly the way a tuning run will read it,
and look at what is inside."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.data import DataError
from studio import charts, ui

SAMPLES = [
    {"task": "Classification", "icon": ":material/label:", "file": "classification_train.jsonl",
     "eval": "classification_eval.jsonl",
     "about": "Debian package description → its archive section (17 classes: games, mail, science, …)."},
    {"task": "Summarization", "icon": ":material/short_text:", "file": "summarization_train.jsonl",
     "eval": "summarization_eval.jsonl",
     "about": "Debian package description → the maintainer's one-line synopsis."},
]


def words(n: float) -> str:
    return f"{int(n)} word" + ("" if int(n) == 1 else "s")


def use_dataset(path: str) -> None:
    st.session_state["active_dataset"] = path
    st.session_state["ds_pick"] = path


st.title("Datasets")
st.caption("Tuning learns from examples: a prompt (`input_text`) and the ideal answer (`output_text`). "
           "Start from a sample or upload your own file; it is checked the same way a tuning run reads it.")

samples_col, upload_col = st.columns(2, gap="medium")
with samples_col.container(border=True, height="stretch"):
    st.subheader(":material/inventory_2: Sample datasets")
    st.caption("Small sets built from Debian 12 package descriptions: 400 training and about 100 eval "
               "examples each. Provenance: `assets/README.md`.")
    current = st.session_state.get("ds_pick") or ui.default_dataset()
    for s in SAMPLES:
        path = str(ui.SAMPLES_DIR / s["file"])
        text, button = st.columns([3, 1], vertical_alignment="center")
        text.markdown(f"{s['icon']} **{s['task']}**  \n{s['about']}")
        button.button("Use sample", key=f"use_{s['file']}", on_click=use_dataset, args=(path,),
                      width="stretch", type="primary" if current == path else "secondary")

with upload_col.container(border=True, height="stretch"):
    st.subheader(":material/upload_file: Upload your own")
    st.caption("JSONL, JSON, CSV, TSV or Parquet with one example per row. Columns named "
               "`input_text`/`output_text` (or `prompt`/`label`, `prompt`/`completion`, `input`/`output`, "
               "`text`/`label`) are found automatically; others can be mapped below.")
    upload = st.file_uploader("Dataset file", type=["jsonl", "json", "csv", "tsv", "parquet"],
                              label_visibility="collapsed")
    if upload is not None:
        try:
            saved = ui.save_upload(upload.name, upload.getvalue())
        except DataError as e:
            ui.show_data_error(e)
        else:
            if st.session_state.get("last_upload") != upload.file_id:  # select it once, not on every rerun
                st.session_state["last_upload"] = upload.file_id
                use_dataset(str(saved))
            st.success(f"Saved as `{saved.name}` in the workspace.", icon=":material/check:")

st.subheader("Inspect a dataset")
path = ui.pick_dataset("Dataset", key="ds_pick", help="Samples ship with the studio; uploads live in the "
                       "workspace's datasets folder.")
if path is None:
    st.stop()
st.session_state["active_dataset"] = path
ds = ui.dataset_with_mapping(path, key="ds_map")
if ds is None:
    st.stop()

inputs = [len(e["input_text"].split()) for e in ds.examples]
answers = [len(e["output_text"].split()) for e in ds.examples]
counts = ds.label_counts()
label_like = ui.looks_like_labels(ds)
st.success(f"**{len(ds)} examples** are ready for tuning: prompts from `{ds.input_column}`, "
           f"answers from `{ds.output_column}`.", icon=":material/task_alt:")

m = st.columns(4)
m[0].metric("Examples", f"{len(ds):,}", border=True)
m[1].metric("Distinct answers", f"{len(counts):,}", border=True,
            help="A small number of distinct answers suggests a classification task.")
m[2].metric("Prompt length (median)", words(pd.Series(inputs).median()), border=True,
            help=f"Shortest {min(inputs)}, longest {max(inputs)} words.")
m[3].metric("Answer length (median)", words(pd.Series(answers).median()), border=True,
            help=f"Shortest {min(answers)}, longest {max(answers)} words.")

left, right = st.columns(2, gap="medium")
with left.container(border=True):
    if label_like:
        st.markdown("**Label distribution**")
        st.caption(f"{len(counts)} classes. Classes with few examples are the hardest to learn.")
        ui.chart(charts.label_distribution_figure(counts))
    else:
        st.markdown("**Answer length**")
        st.caption("Free-text answers: a summarization or generation task.")
        ui.chart(charts.length_figure(answers, "Words per answer"))
with right.container(border=True):
    st.markdown("**Prompt length**")
    series = pd.Series(inputs)
    st.caption(f"Words per prompt: median {int(series.median())}, 95th percentile {int(series.quantile(0.95))}, "
               f"longest {series.max()}. Prompts longer than the max sequence length are cut during tuning.")
    ui.chart(charts.length_figure(inputs, "Words per prompt"))

st.markdown("**Preview**")
st.caption(f"`{Path(path).name}` as the tuning run will see it; *line* is the line (or row) in the file.")
preview = pd.DataFrame(ds.examples)[["line", "input_text", "output_text"]]
st.dataframe(preview, hide_index=True, height=360, column_config={
    "line": st.column_config.NumberColumn("line", width="small"),
    "input_text": st.column_config.TextColumn(f"prompt ({ds.input_column})", width="large"),
    "output_text": st.column_config.TextColumn(f"answer ({ds.output_column})", width="medium")})
