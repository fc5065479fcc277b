"""Parts of the Preferences page: who is labelling, which queue, the blind A/B labelling card, the review
of agreement with adjudication, and import/export of pairs. Every label is written to SQLite by
core.preferences the moment it is given, so there is nothing to save and a reload resumes where the
labeler stopped; only the skipped items of this session live in session_state."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from core import preferences
from core.data import DataError
from studio import ui

CHOICE_NAMES = {"a": "A better", "b": "B better", "tie": "Tie", "both_bad": "Both bad"}
# (what submit() records, button label, keyboard shortcut, icon)
BUTTONS = [("first", "A is better", "1", ":material/arrow_back:"),
           ("second", "B is better", "2", ":material/arrow_forward:"),
           ("tie", "Tie", "3", ":material/drag_handle:"), ("both_bad", "Both bad", "4", ":material/thumb_down:")]
FORMATS = {"vertex": "Reference format: input_text, candidate_0, candidate_1, choice",
           "dpo": "DPO format: prompt, chosen, rejected"}


# ---------------------------------------------------------------- who and which queue

def labeler_name() -> str:
    """The labeler's name, kept for the session outside the widget (a widget's own state is dropped when
    another page is shown)."""
    if "pf_name" not in st.session_state:
        st.session_state["pf_name"] = st.session_state.get("labeler", "")
    name = st.text_input("Your name", key="pf_name", max_chars=64, placeholder="e.g. ana",
                         help="Labels are stored under this name; use the same name to continue later.").strip()
    st.session_state["labeler"] = name
    return name


def _create(ws: Path) -> None:
    name, k = st.session_state.get("pf_new_name", "").strip(), int(st.session_state.get("pf_new_k", 1))
    try:
        preferences.create_queue(ws, name, labels_per_item=k)
    except ValueError as e:
        st.session_state["pf_queue_error"] = str(e)
        return
    st.session_state["pf_queue"] = name
    st.session_state["pf_new_name"] = ""


def new_queue_form(ws: Path) -> None:
    st.text_input("Queue name", key="pf_new_name", placeholder="e.g. sections-review",
                  help="Letters, digits, '.', '-' and '_'; up to 64.")
    st.number_input("Labels per item (K)", 1, 10, value=1, key="pf_new_k",
                    help="How many different people label each item. With 2 or more, agreement (kappa) can be "
                         "measured and disagreements adjudicated.")
    st.button("Create queue", icon=":material/add:", key="pf_create", on_click=_create, args=(ws,))
    if st.session_state.get("pf_queue_error"):
        st.error(st.session_state.pop("pf_queue_error"))


def pick_queue(ws: Path) -> str | None:
    """A selectbox over the labelling queues, with a popover to create one; None while there is none."""
    queues = {q["name"]: q for q in preferences.list_queues(ws)}
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    with c2.popover("New", icon=":material/add:", width="stretch", help="Create a labelling queue"):
        new_queue_form(ws)
    if not queues:
        c1.info("No labelling queue yet. Create one, import a pairs file (Import / export), or send rows from "
                "the Evaluate page's regression browser or the Playground.", icon=":material/info:")
        return None
    ui.seed_choice("pf_queue", list(queues), list(queues)[-1])
    return c1.selectbox("Queue", list(queues), key="pf_queue", format_func=lambda n: (
        f"{n}  ·  {queues[n]['items']} items  ·  {queues[n]['labels_per_item']} "
        f"label{'s' * (queues[n]['labels_per_item'] != 1)} per item"))


# ---------------------------------------------------------------- label

def _skipped(queue: str) -> set[int]:
    return st.session_state.setdefault("pf_skip", {}).setdefault(queue, set())


def _submit(ws: Path, item_id: int, labeler: str, shown: str) -> None:
    comment = st.session_state.get(f"pf_comment::{item_id}", "")
    preferences.submit(ws, item_id, labeler, shown, comment)
    name = {"first": "A is better", "second": "B is better", "tie": "Tie", "both_bad": "Both bad"}[shown]
    st.session_state["pf_last"] = f"Item {item_id}: **{name}** saved."


def _skip(queue: str, item_id: int) -> None:
    _skipped(queue).add(item_id)
    st.session_state["pf_last"] = f"Item {item_id} skipped for this session."


def _undo(ws: Path, queue: str, labeler: str) -> None:
    item_id = preferences.undo_last(ws, queue, labeler)
    if item_id is not None:
        _skipped(queue).discard(item_id)
    st.session_state["pf_last"] = (f"Your label on item {item_id} was removed: label it again." if item_id is not None
                                   else "Nothing to undo: you have no label in this queue.")


def progress_bars(ws: Path, queue: str, labeler: str) -> None:
    prog = preferences.progress(ws, queue, labeler)
    items, k = prog["items"], prog["labels_per_item"]
    c1, c2 = st.columns(2, gap="medium")
    c1.progress(min(1.0, prog["mine"] / items) if items else 0.0,
                text=f"You: **{prog['mine']}** of {items} items labelled")
    c2.progress(prog["complete"] / items if items else 0.0,
                text=f"Queue: **{prog['complete']}** of {items} items have their {k} label{'s' * (k != 1)}")


def _answer(col, title: str, text: str) -> None:
    with col.container(border=True, height="stretch"):
        st.markdown(f"#### {title}")
        st.text(text or "(empty answer)")


@st.fragment
def label_panel(ws: Path, queue: str, labeler: str) -> None:
    """One item at a time, blind: the two answers in this labeler's own stable order, as A and B. A
    fragment: a label reruns this card only."""
    progress_bars(ws, queue, labeler)
    if st.session_state.get("pf_last"):
        st.caption(st.session_state.pop("pf_last"))
    skipped = _skipped(queue)
    item = preferences.next_item(ws, queue, labeler, skip=skipped)
    if item is None:
        if skipped:
            st.info(f"Nothing left but the {len(skipped)} item{'s' * (len(skipped) != 1)} you skipped.",
                    icon=":material/skip_next:")
            st.button("Show the skipped items again", key="pf_unskip", on_click=skipped.clear)
        else:
            st.success("All done: no item in this queue needs a label from you. Thank you!",
                       icon=":material/check_circle:")
        st.button("Undo last", icon=":material/undo:", key="pf_undo", shortcut="U", on_click=_undo,
                  args=(ws, queue, labeler))
        return
    with st.container(border=True):
        st.caption(f"Item {item['id']} · prompt")
        st.text(item["prompt"])
    left, right = st.columns(2, gap="medium")
    _answer(left, "A", item["first"])
    _answer(right, "B", item["second"])
    st.text_input("Comment (optional)", key=f"pf_comment::{item['id']}", placeholder="Why? (saved with the label)")
    cols = st.columns(4)
    for col, (shown, label, key, icon) in zip(cols, BUTTONS):
        col.button(label, key=f"pf_{shown}", icon=icon, shortcut=key, width="stretch",
                   type="primary" if shown in ("first", "second") else "secondary",
                   on_click=_submit, args=(ws, item["id"], labeler, shown))
    c1, c2, c3 = st.columns([1, 1, 4], vertical_alignment="center")
    c1.button("Skip", icon=":material/skip_next:", key="pf_skip_btn", shortcut="S", width="stretch",
              on_click=_skip, args=(queue, item["id"]))
    c2.button("Undo last", icon=":material/undo:", key="pf_undo", shortcut="U", width="stretch",
              on_click=_undo, args=(ws, queue, labeler))
    c3.caption("Keys: **1** A better · **2** B better · **3** tie · **4** both bad · **S** skip · **U** undo "
               "(when no text box has focus). Each label is saved at once; the answers' order is random per "
               "labeler and their sources are hidden.")


# ---------------------------------------------------------------- review

def kappa_words(k: float | None) -> str:
    """Landis & Koch's reading of a kappa value."""
    if k is None or k != k:
        return "–"
    for top, words in ((0.0, "poor"), (0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")):
        if k <= top:
            return words
    return "almost perfect"


@st.fragment(run_every=10)
def agreement_summary(ws: Path, queue: str) -> None:
    """Agreement so far; refreshed every 10 s while others label."""
    ag = preferences.agreement(ws, queue)
    prog = preferences.progress(ws, queue)
    m = st.columns(4)
    m[0].metric("Labels", ag["labels"], border=True, help="Labels given in this queue (imported choices excluded).")
    m[1].metric("Items complete", f"{prog['complete']} / {prog['items']}", border=True,
                help=f"Items with their {prog['labels_per_item']} label(s).")
    raw = ag["raw_agreement"]
    m[2].metric("Raw agreement", f"{raw:.0%}" if raw is not None else "–", border=True,
                help="Share of items labelled by two or more people on which all of them chose the same.")
    fl = ag["fleiss"]
    m[3].metric("Fleiss' κ", f"{fl['kappa']:.2f}" if fl else "–", border=True,
                help=(f"Over {fl['items']} items with {fl['raters_per_item']} labels each: "
                      f"{kappa_words(fl['kappa'])} agreement." if fl else "Needs items with two or more labels."))
    left, right = st.columns(2, gap="medium")
    with left.container(border=True, height="stretch"):
        st.markdown("**Cohen's κ per pair of labelers**")
        if ag["cohen"]:
            df = pd.DataFrame([{"labelers": pair, "items": v["items"], "kappa": v["cohen_kappa"],
                                "agreement": v["raw_agreement"], "reading": kappa_words(v["cohen_kappa"])}
                               for pair, v in ag["cohen"].items()])
            st.dataframe(df, hide_index=True, key="pf_cohen", column_config={
                "kappa": st.column_config.NumberColumn("Cohen's κ", format="%.2f"),
                "agreement": st.column_config.NumberColumn("raw agreement", format="percent")})
            st.caption("κ corrects agreement for chance: 0 is chance level, 1 is perfect.")
        else:
            st.caption("Appears once two labelers share at least two items.")
    with right.container(border=True, height="stretch"):
        st.markdown("**Labels per labeler**")
        if ag["per_labeler"]:
            rows = [{"labeler": lab, **{CHOICE_NAMES[c]: counts.get(c, 0) for c in preferences.CHOICES},
                     "total": sum(counts.values())} for lab, counts in ag["per_labeler"].items()]
            st.dataframe(pd.DataFrame(rows), hide_index=True, key="pf_per_labeler")
            st.caption("A and B are the answers as stored; each labeler saw them in their own random order.")
        else:
            st.caption("No labels yet.")


def _item(ws: Path, item_id: int) -> dict | None:
    return preferences.get_item(ws, item_id)


def _adjudicate(ws: Path, item_id: int, by: str) -> None:
    choice = st.session_state.get(f"pf_adj::{item_id}")
    if choice:
        preferences.adjudicate(ws, item_id, choice, by)
        st.session_state["pf_adj_done"] = f"Item {item_id}: final choice **{CHOICE_NAMES[choice]}**."


@st.fragment
def disagreements(ws: Path, queue: str, labeler: str) -> None:
    """Items whose labelers disagree, each with the final choice an adjudicator sets."""
    found = preferences.agreement(ws, queue)["disagreements"]
    st.markdown(f"**Disagreements** · {len(found)}")
    if st.session_state.get("pf_adj_done"):
        st.success(st.session_state.pop("pf_adj_done"), icon=":material/gavel:")
    if not found:
        st.caption("No item has conflicting labels.")
        return
    undecided = sum(1 for d in found if not (_item(ws, d["item_id"]) or {}).get("adjudicated"))
    st.caption(f"{undecided} still to decide. The final choice overrides the majority vote in the export.")
    for d in found[:50]:
        item = _item(ws, d["item_id"])
        if item is None:
            continue
        votes = " · ".join(f"{who}: {CHOICE_NAMES[c]}" for who, c in sorted(d["labels"].items()))
        done = f" · decided: {CHOICE_NAMES[item['adjudicated']]}" if item["adjudicated"] else ""
        with st.expander(f"Item {item['id']} · {votes}{done}", expanded=False):
            st.caption("Prompt")
            st.text(item["prompt"])
            a, b = st.columns(2, gap="medium")
            _answer(a, "A", item["answer_a"])
            _answer(b, "B", item["answer_b"])
            c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
            c1.segmented_control("Final choice", list(preferences.CHOICES), format_func=CHOICE_NAMES.get,
                                 key=f"pf_adj::{item['id']}", default=item["adjudicated"])
            c2.button("Adjudicate", icon=":material/gavel:", key=f"pf_adj_btn::{item['id']}", width="stretch",
                      on_click=_adjudicate, args=(ws, item["id"], labeler))
    if len(found) > 50:
        st.caption(f"{len(found) - 50} more: adjudicate these first.")


# ---------------------------------------------------------------- import / export

def _import(ws: Path, target_key: str) -> None:
    upload, target = st.session_state.get("pf_upload"), st.session_state.get(target_key, "").strip()
    if upload is None:
        return
    with tempfile.TemporaryDirectory() as tmp:  # under the file's own name: its format and provenance
        path = Path(tmp) / ui.safe_filename(upload.name)
        path.write_bytes(upload.getvalue())
        try:
            n = preferences.import_file(ws, path, target)
        except (DataError, ValueError) as e:
            st.session_state["pf_import_result"] = ("error", e)
            return
    st.session_state["pf_queue"] = target  # show the queue it went into
    st.session_state["pf_import_result"] = ("ok", f"Imported **{n}** pairs into queue **{target}**.")


def import_pairs(ws: Path, queue: str | None) -> None:
    with st.container(border=True):
        st.markdown("**Import pairs**")
        st.caption("A file of preference pairs in either format: `input_text, candidate_0, candidate_1, choice` "
                   "or `prompt, chosen, rejected` (JSONL, CSV or Parquet). A file's own choice is kept as the "
                   "label of `imported`; people still label every item.")
        upload = st.file_uploader("Pairs file", type=ui.UPLOAD_TYPES, key="pf_upload")
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        key = f"pf_import_queue::{queue}::{upload.name if upload else ''}"
        default = queue or (ui.dataset_name(upload.name) if upload else "")
        c1.text_input("Into queue", value=default, key=key,
                      help="An existing queue, or a new one (created with 1 label per item).")
        c2.button("Import", icon=":material/upload:", key="pf_import", disabled=upload is None, width="stretch",
                  on_click=_import, args=(ws, key))
        kind, message = st.session_state.pop("pf_import_result", (None, None))
        if kind == "ok":
            st.success(message, icon=":material/check_circle:")
        elif isinstance(message, DataError):
            ui.show_data_error(message)
        elif message:
            st.error(str(message))


def export_pairs(ws: Path, queue: str) -> None:
    with st.container(border=True):
        st.markdown("**Export curated pairs**")
        fmt = st.radio("Format", list(FORMATS), format_func=FORMATS.get, key="pf_export_format", horizontal=True)
        rows = preferences.export(ws, queue, fmt)
        st.caption(f"**{len(rows)}** pairs: the adjudicated choice, else the majority of labels (imported choices "
                   "count as one vote). Ties, both-bad and items without a clear majority are left out. "
                   "A DPO run on the Tune page can read the queue directly.")
        if rows:
            st.dataframe(pd.DataFrame(rows[:5]), hide_index=True, key="pf_export_preview")
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        st.download_button(f"Download {queue}-{fmt}.jsonl", body, file_name=f"{queue}-{fmt}.jsonl",
                           mime="application/jsonl", icon=":material/download:", disabled=not rows,
                           on_click="ignore", key="pf_export")
