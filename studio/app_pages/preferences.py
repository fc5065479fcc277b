"""Preferences: label pairs of answers blind (A or B better, tie, both bad), review how well the labelers
agree and settle their disagreements, and import or export the pairs a DPO run learns from."""
from __future__ import annotations

import streamlit as st

from studio import cached, candidate_views, label_views

st.title("Preferences")
st.caption("Compare two answers to the same prompt without knowing which model wrote them. Curated pairs "
           "(chosen vs rejected) train a DPO run on the Tune page.")
ws = cached.workspace()

with st.container(border=True):
    c1, c2 = st.columns([1, 2])
    with c1:
        labeler = label_views.labeler_name()
    with c2:
        queue = label_views.pick_queue(ws) if labeler else None

if not labeler:
    st.info("Type your name to start: your labels are stored under it, so you can stop at any time and go on "
            "later from where you left off.", icon=":material/badge:")
    st.stop()

label_tab, review_tab, io_tab = st.tabs(["Label", "Review", "Import / export"])
with label_tab:
    if queue:
        label_views.label_panel(ws, queue, labeler)
    else:
        st.caption("Pick or create a queue above.")
with review_tab:
    if queue:
        label_views.agreement_summary(ws, queue)
        with st.container(border=True):
            label_views.disagreements(ws, queue, labeler)
    else:
        st.caption("Pick or create a queue above.")
with io_tab:
    label_views.import_pairs(ws, queue)
    if queue:
        candidate_views.generate_candidates(ws, queue)
        label_views.export_pairs(ws, queue)
