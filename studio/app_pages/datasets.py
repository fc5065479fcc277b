"""Datasets: start from a sample or upload a file in any common format, check every row the way a tuning
run will read it, see the exact text the model trains on before spending compute, then split and register
it for the other pages."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import inventory
from core.config import TASKS
from core.data import FORMATS, DataError, detect_columns, detect_format
from studio import cached, catalog_views, charts, ui
from studio import dataset_views as views

SAMPLES = [
    {"task": "Classification", "icon": ":material/label:", "file": "classification_train.jsonl",
     "eval": "classification_eval.jsonl",
     "about": "Debian package description → its archive section (17 classes: games, mail, science, …)."},
    {"task": "Summarization", "icon": ":material/short_text:", "file": "summarization_train.jsonl",
     "eval": "summarization_eval.jsonl",
     "about": "Debian package description → the maintainer's one-line synopsis."},
]


TASK_NAMES = {"classification": "Classification", "summarization": "Summarization",
              "text_generation": "Text generation"}


def use_dataset(path: str) -> None:
    st.session_state["active_dataset"] = path
    st.session_state["ds_pick"] = path


st.title("Datasets")
st.caption("Tuning learns from examples: a prompt (`input_text`) and the ideal answer (`output_text`), or whole "
           "conversations. Start from a sample or upload your own file, and see exactly what the model will be "
           "taught before you spend any compute on it.")

samples_col, upload_col = st.columns(2, gap="medium")
with samples_col.container(border=True, height="stretch"):
    st.subheader(":material/inventory_2: Sample datasets")
    st.caption("Small sets built from Debian 12 package descriptions: 400 training and about 100 eval "
               "examples each. Provenance: `assets/README.md`.")
    current = st.session_state.get("ds_pick") or ui.default_dataset()
    for s in SAMPLES:
        path = str(inventory.SAMPLES_DIR / s["file"])
        text, button = st.columns([3, 1], vertical_alignment="center")
        text.markdown(f"{s['icon']} **{s['task']}**  \n{s['about']}")
        button.button("Use sample", key=f"use_{s['file']}", on_click=use_dataset, args=(path,),
                      width="stretch", type="primary" if current == path else "secondary")

with upload_col.container(border=True, height="stretch"):
    st.subheader(":material/upload_file: Upload your own")
    st.caption("JSONL, JSON, CSV, TSV or Parquet, optionally gzipped, one example per row: prompt → answer "
               "columns (`input_text`/`output_text`, `prompt`/`label`, … or map your own), chat `messages`, "
               "preference pairs, or prompts alone.")
    upload = st.file_uploader("Dataset file", type=ui.UPLOAD_TYPES, label_visibility="collapsed")
    if upload is not None:
        try:
            saved = inventory.save_upload(cached.workspace(), upload.name, upload.getvalue())
        except DataError as e:
            ui.show_data_error(e)
        else:
            if st.session_state.get("last_upload") != upload.file_id:  # select it once, not on every rerun
                st.session_state["last_upload"] = upload.file_id
                use_dataset(str(saved))
            st.success(f"Saved as `{saved.name}` in the workspace.", icon=":material/check:")


def inspect() -> None:
    st.subheader("Inspect a dataset")
    top = st.columns([3, 3, 2, 2])
    with top[0]:
        path = ui.pick_dataset("Dataset", key="ds_pick", hide_broken=False, help="Samples ship with the studio; uploads live in the "
                               "workspace's datasets folder; registered datasets in its catalog.")
    if path is None:
        return
    st.session_state["active_dataset"] = path
    with top[1]:
        eval_path = ui.pick_dataset("Eval data (optional)", key=f"ds_eval::{path}", optional=True,
                                    default=inventory.sibling_eval(path), none_label="None",
                                    help="Checked for rows that are also in the training data; it can also be "
                                         "registered as the eval set instead of a split.")
    try:
        columns = cached.dataset_columns(path)
    except DataError as e:
        ui.show_data_error(e)
        return
    detected = detect_format(columns)
    choice = top[2].selectbox("Format", ["auto", *FORMATS], key=f"ds_format::{path}",
                              format_func=lambda f: "Detect" if f == "auto" else views.FORMAT_NAMES[f],
                              help="Detected from the columns; choose one to read the file differently.")
    fmt = None if choice == "auto" else choice
    shown = fmt or detected
    missing = views.missing_columns(fmt, columns)
    if missing:
        st.error(f"**`{Path(path).name}` cannot be read as {views.FORMAT_NAMES[fmt].lower()}:** {missing} It has "
                 f"{', '.join(f'`{c}`' for c in columns)}. Choose *Detect* or another format.", icon=":material/report:")
        return
    inp = out = None
    if shown in (None, "prompt_answer") and detect_columns(columns) is None:
        mapping = ui.ask_columns(path, columns, key="ds_map")
        if mapping is None:
            return
        inp, out = mapping
    read_fmt = fmt or detected  # a detected prompts-only file is read as one, not refused for lacking answers
    try:
        ds = cached.valid_examples(path, inp, out, read_fmt)
    except DataError as e:
        ui.show_data_error(e)
        return
    except (KeyError, TypeError, ValueError) as e:  # core names what it can; anything else still says where
        st.error(f"**`{Path(path).name}` cannot be read as {views.FORMAT_NAMES.get(shown, 'a dataset')}:** "
                 f"{type(e).__name__}: {e}", icon=":material/report:")
        return
    guess = inventory.guess_task(ds)
    task = top[3].selectbox("Task", TASKS, index=TASKS.index(guess), key=f"ds_task::{path}::{ds.format}",
                            format_func=TASK_NAMES.get, disabled=ds.format not in ("prompt_answer", "chat"),
                            help="Decides the default prompt template and what the check expects "
                                 f"(e.g. rare classes for classification). Suggested: {inventory.task_reason(ds)}")
    task = task if ds.format in ("prompt_answer", "chat") else None
    try:
        report = cached.check_report(path, task, read_fmt, inp, out, eval_path)
    except (KeyError, TypeError, ValueError) as e:  # e.g. an eval file of another format
        st.error(f"**The check could not finish:** {type(e).__name__}: {e}", icon=":material/report:")
        return

    st.markdown(f"{views.format_badge(ds.format, detected)} &nbsp; :gray[`{Path(path).name}` · columns "
                f"{', '.join(f'`{c}`' for c in columns[:12])}{' …' if len(columns) > 12 else ''}]")
    for note in dict.fromkeys([*ds.notes, *report["notes"]]):
        st.warning(note, icon=":material/info:")
    views.headline(report, ds, ds.format)
    views.overview(report, ds)

    # Visual order: check, pre-flight, preview, split; the split settings are read first because the
    # Check card's fixed copy is split the same way.
    check_box = st.container(border=True)
    preflight_box = st.container(border=True) if ds.format in ("prompt_answer", "chat") else None
    preview_box, split_box = st.container(border=True), st.container(border=True)
    with split_box:
        st.subheader(":material/call_split: Split and register")
        st.caption("Registering stores a normalised copy under a name, split into train and eval, in the workspace "
                   "catalog. It then appears in the dataset pickers of Tune, Evaluate and Playground.")
        ctx = {**catalog_views.split_settings(path, columns, eval_path), "format": read_fmt, "columns": (inp, out)}

    with check_box:
        st.subheader(":material/fact_check: Check")
        st.caption("Every row read the way a tuning run reads it: problems are grouped by kind, each with its line "
                   "and field. Nothing is changed in your file.")
        left, right = st.columns([3, 2], gap="medium")
        with left:
            views.problems_section(report, path)
            views.overlap_note(report, eval_path)
            catalog_views.fixes_section(report, path, ctx)
        with right:
            labels = report.get("stats", {}).get("labels") or {}
            if labels and (task == "classification" or guess == "classification"):
                st.markdown("**Label distribution**")
                rare = sum(g["count"] for g in report["groups"] if g["kind"] == "rare class")
                st.caption(f"{len(labels)} classes." + (f" {rare} with very few examples (listed on the left): "
                                                       "expect a low F1 for them." if rare else
                                                       " Classes with few examples are the hardest to learn."))
                ui.chart(charts.label_distribution_figure(labels))
            elif ds.format == "prompt_answer":
                st.markdown("**Answer length**")
                st.caption("Free-text answers: a summarization or generation task.")
                ui.chart(charts.length_figure([len(e["output_text"].split()) for e in ds.examples],
                                              "Words per answer"))
    if preflight_box is not None:
        with preflight_box:
            views.preflight_card(path, ds, task, read_fmt, (inp, out))
    with preview_box:
        st.subheader(":material/table_rows: Preview")
        if ds.format == "chat":
            views.chat_preview(ds, path)
        else:
            views.table_preview(ds, path)
    with split_box:
        catalog_views.register_card(path, report, ctx)


catalog_views.catalog_list()
inspect()
