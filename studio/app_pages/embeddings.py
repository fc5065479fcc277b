"""Embeddings: tune a text-embedding model for retrieval on your documents and measure it as NDCG@10 before
and after. Check the data (corpus, queries, relevance labels, or query/positive pairs), tune (a job in the
queue: loss and live NDCG@10 as it goes), read base vs tuned with intervals and per-query changes, and try
queries in the search playground: the base and the tuned model's top 10 side by side."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import jobs
from core.config import ConfigError, EmbedTuneConfig
from core.data import DataError
from core.embed.evaluate import read_results
from core.names import ACTIVE_STATES
from studio import cached, embed_views, ui

st.title("Embeddings")
st.caption("Make search find the right document: a sentence-transformers model learns from query → relevant "
           "document pairs (every other document in a batch is a negative), and retrieval on held-out queries "
           "is measured as NDCG@10 before and after.")
ws = cached.workspace()

with st.container(border=True):
    st.subheader("Data")
    files = embed_views.pick_files(ws)
    data, report = embed_views.check_panel(files) if files else (None, None)

if report and report["usable"]:
    with st.container(border=True):
        st.subheader("Tune")
        embed_views.tune_form(ws, files, report)

st.subheader("Embedding jobs")
found = jobs.list_jobs(ws, "embed_tune")
if not found:
    st.info("No embedding jobs yet. Check the data above and press **Start tuning**.", icon=":material/info:")
else:
    by_dir = {j["dir"]: j for j in found}
    if st.session_state.get("emb_job_next") in by_dir:
        st.session_state["emb_job"] = st.session_state.pop("emb_job_next")
    ui.seed_choice("emb_job", list(by_dir), None)
    chosen = st.selectbox("Job", list(by_dir), key="emb_job", format_func=lambda d: ui.job_label(by_dir[d]),
                          help="Newest first.")
    job, job_dir = by_dir[chosen], Path(chosen)
    if job["status"].get("state") in ACTIVE_STATES:
        embed_views.live_card(job_dir)
    else:
        embed_views.job_card(job_dir, job["status"])
    results, rows = read_results(job_dir)
    if results and "tuned" in results:
        with st.container(border=True):
            st.subheader("Before and after")
            embed_views.results_panel(results, rows)
    elif job["status"].get("state") == "succeeded":
        st.caption("This job was tuned without the final evaluation: `studio embed evaluate` scores it.")
    if (job_dir / "model").is_dir():
        with st.container(border=True):
            st.subheader("Search playground")
            st.caption("Type a query: the base model and this job's tuned model each rank every document; the top 10 "
                       "are side by side, documents labeled relevant to the query marked.")
            try:
                job_data = embed_views.load(EmbedTuneConfig.from_dict(job["config"]).data_files())
            except DataError as e:
                ui.show_data_error(e)
            except (ConfigError, TypeError) as e:  # a job.json edited by hand
                st.error(f"**This job's settings cannot be read:** {e}", icon=":material/broken_image:")
            else:
                embed_views.playground(ws, job_dir, job_data, job["config"])
