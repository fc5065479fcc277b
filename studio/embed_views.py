"""The Embeddings page's parts: where the data comes from, its check, the tuning form, an embedding job's
card (progress, loss and live NDCG@10), the before/after results with intervals and per-query changes,
and the search playground. Every number and decision comes from core.embed; models load (torch) only
when a search is asked for, through the cached loaders here."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core import jobs, runs
from core.config import BUNDLED_EMBED_MODEL, ConfigError, EmbedTuneConfig
from core.data import DataError
from core.embed.data import (
    EmbedSet,
    check_report,
    load_embed_set,
    page_path,
    recommend_steps,
    sample_files,
    save_upload,
)
from core.embed.evaluate import METRIC_NAMES
from core.embed.models import CACHE_DIR, TUNED_DIR, EmbedModelError
from core.names import ACTIVE_STATES
from studio import charts, ui

SOURCES = {"sample": "Sample set (Debian)", "upload": "Upload files", "paths": "Files in the workspace"}
FILE_ROLES = {"three_files": [("corpus", "Corpus (JSONL: _id, title, text)"), ("queries", "Queries (JSONL: _id, text)"),
                              ("train", "Train labels (TSV: query-id, corpus-id, score)"),
                              ("test", "Test labels (optional; else 20% of the queries)")],
              "pairs": [("pairs", "Pairs (query, positive)"), ("test_pairs", "Test pairs (optional)")]}
LIVE_SERIES = [("eval_ndcg_at_10", "NDCG@10", charts.TUNED_COLOR), ("eval_mrr_at_10", "MRR@10", charts.EVAL_COLOR)]


# ---------------------------------------------------------------- data

def _mtime(path: str | None) -> int:
    try:
        return Path(path).stat().st_mtime_ns if path else 0
    except OSError:
        return 0


@st.cache_data(show_spinner="Reading the retrieval data…", max_entries=16)
def _load(files: tuple, mtimes: tuple) -> EmbedSet:
    return load_embed_set(**dict(files))


def load(files: dict) -> EmbedSet:
    """core.embed.data.load_embed_set, cached until a file changes. Raises DataError."""
    keyed = tuple(sorted(files.items()))
    return _load(keyed, tuple(_mtime(v) if isinstance(v, str) else 0 for _, v in keyed))


def pick_files(ws: Path) -> dict | None:
    """The data of the page: the sample set, uploaded files or paths. None until the needed files are given."""
    source = st.radio("Source", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="emb_source")
    if source == "sample":
        st.caption("Debian package descriptions: a package's one-line synopsis is the query, its long description "
                   "the document; 3,000 training pairs, 500 test queries, split by package (assets/embeddings/).")
        return sample_files()
    fmt = st.radio("Format", list(FILE_ROLES), horizontal=True, key="emb_format",
                   format_func={"three_files": "Corpus, queries and labels", "pairs": "Query / positive pairs"}.get)
    files = {}
    cols = st.columns(2)
    for i, (role, label) in enumerate(FILE_ROLES[fmt]):
        with cols[i % 2]:
            if source == "upload":
                up = st.file_uploader(label, key=f"emb_up_{role}", type=["jsonl", "json", "tsv", "csv", "parquet"])
                if up is not None:
                    try:
                        files[role] = str(save_upload(ws, up.name, up.getvalue()))
                    except DataError as e:
                        ui.show_data_error(e)
            else:
                path = st.text_input(label, key=f"emb_path_{role}", placeholder=f"{ws}/…").strip()
                if path:
                    try:
                        files[role] = str(page_path(path, ws))
                    except DataError as e:
                        ui.show_data_error(e)
    needed = ["pairs"] if fmt == "pairs" else ["corpus", "queries", "train"]
    if any(r not in files for r in needed):
        st.info("Give " + ", ".join(dict(FILE_ROLES[fmt])[r].split(" (")[0].lower() for r in needed) + " to go on.",
                icon=":material/upload_file:")
        return None
    return files


def check_panel(files: dict) -> tuple[EmbedSet | None, dict | None]:
    """The data check: counts, the verdict, notes, problems and warnings with file, line and field."""
    try:
        data = load(files)
    except DataError as e:
        ui.show_data_error(e)
        return None, None
    report = check_report(data)
    c = report["counts"]
    cols = st.columns(4)
    cols[0].metric("Documents", f"{c['documents']:,}", border=True)
    cols[1].metric("Training pairs", f"{c['train_pairs']:,}", border=True)
    cols[2].metric("Test queries", f"{c['test_queries']:,}", border=True)
    cols[3].metric("Problems", f"{len(report['problems']):,}", border=True,
                   help="Rows left out (each listed below with its file, line and field).")
    if report["usable"]:
        st.success(f"Ready: {c['train_pairs']:,} query → document pairs to tune on, {c['test_queries']:,} test "
                   "queries to measure with.", icon=":material/task_alt:")
    else:
        st.error(f"**Not usable yet:** {report['why_not']}.", icon=":material/report:")
    for note in report["notes"]:
        st.caption(f":material/info: {note}")
    for title, items, icon in (("Problems (rows left out)", report["problems"], ":material/error:"),
                               ("Warnings", report["warnings"], ":material/warning:")):
        if items:
            with st.expander(f"{title}: {len(items):,}", icon=icon, expanded=not report["usable"]):
                st.dataframe(pd.DataFrame([{"File": p["file"], "Line": p["line"], "Field": p["field"],
                                            "Problem": p["problem"]} for p in items]),
                             hide_index=True, width="stretch", height=min(400, 35 * (len(items) + 1) + 3))
    return data, report


# ---------------------------------------------------------------- tuning

def tune_form(ws: Path, files: dict, report: dict) -> None:
    pairs = report["counts"]["train_pairs"]
    c1, c2 = st.columns([2, 1])
    model = c1.text_input("Base model", value=BUNDLED_EMBED_MODEL, key="emb_model",
                          help="The bundled all-MiniLM-L6-v2, a sentence-transformers model id or a local folder.")
    batch = c2.number_input("Batch size", 2, 512, 32, key="emb_batch",
                            help="Pairs per step. Every other pair's document in the batch is a negative for each "
                                 "query (in-batch negatives): larger batches give harder lessons, and cost more.")
    steps_default, why = recommend_steps(pairs, int(batch))
    c3, c4, c5 = st.columns(3)
    steps = c3.number_input("Steps", 1, 100_000, steps_default, key=f"emb_steps::{steps_default}", help=why)
    rate = c4.number_input("Learning rate", 1e-7, 1e-2, EmbedTuneConfig.learning_rate, step=1e-5, format="%.1e",
                          key="emb_lr", help="Peak rate; 1e-4 did best of 5e-5 / 1e-4 / 2e-4 on the sample set.")
    every = c5.number_input("Live NDCG@10 every", 1, 100_000, max(1, steps_default // 4), key=f"emb_every::{steps_default}",
                            help="Steps between scores of the live metric (on up to 100 test queries).")
    st.caption(f"{why} Texts are cut to {EmbedTuneConfig.max_seq_length} tokens while tuning. After tuning, base "
               "and tuned rank every test query against the whole corpus.")
    if st.button("Start tuning", type="primary", icon=":material/model_training:", key="emb_start"):
        try:
            cfg = EmbedTuneConfig(corpus=files.get("corpus"), queries=files.get("queries"),
                                  train_labels=files.get("train"), test_labels=files.get("test"),
                                  pairs=files.get("pairs"), test_pairs=files.get("test_pairs"),
                                  model=model.strip() or BUNDLED_EMBED_MODEL, max_iterations=int(steps),
                                  batch_size=int(batch), learning_rate=float(rate), eval_every=int(every))
        except ConfigError as e:
            ui.show_setting_error(e)
            return
        job_dir = jobs.create_embed_tune(ws, cfg)
        outcome = jobs.submit(job_dir)
        st.session_state["emb_job_next"] = str(job_dir)
        st.toast(f"Embedding job {job_dir.name} {'started' if outcome == 'started' else 'queued behind the jobs ahead'}",
                 icon=":material/model_training:")


# ---------------------------------------------------------------- a job's card

def curves(metrics: list[dict]) -> None:
    left, right = st.columns(2)
    with left:
        st.markdown("**Loss** (in-batch negatives)")
        fig = charts.train_loss_figure(metrics)
        ui.chart(fig) if fig is not None else st.caption("The loss appears after the first step.")
    with right:
        st.markdown("**Live NDCG@10 / MRR@10** (a slice of the test queries)")
        fig = charts.series_figure(metrics, LIVE_SERIES, "Score", height=340)
        ui.chart(fig) if fig is not None else st.caption("Scored at the start and every few steps.")


def job_card(job_dir: Path, status: dict) -> None:
    metrics = runs.read_metrics(job_dir)
    state = status.get("state")
    with st.container(border=True):
        head, badge = st.columns([5, 1], vertical_alignment="center")
        config = jobs.read_job(job_dir).get("config") or {}
        head.markdown(f"**{status.get('name') or job_dir.name}**")
        head.caption(" · ".join(str(x) for x in (config.get("model"), f"{config.get('max_iterations')} steps",
                                                  f"batch {config.get('batch_size')}", f"lr {config.get('learning_rate')}",
                                                  status.get("device"), job_dir.name) if x))
        with badge:
            ui.status_badge(state)
        if state == "failed":
            ui.show_failure("The job", status)
        if state in ACTIVE_STATES:
            if not jobs.cancel_requested(job_dir):
                st.button("Cancel", icon=":material/stop_circle:", key=f"emb_cancel::{job_dir.name}",
                          on_click=jobs.cancel, args=(job_dir,), help="Stops after the current step and saves the model.")
            ui.step_progress(job_dir, status)
        curves(metrics)
        if (job_dir / TUNED_DIR).is_dir():
            st.caption(f":material/folder: Tuned model (a sentence-transformers folder): `{job_dir / TUNED_DIR}`")


@st.fragment(run_every=2)
def live_card(job_dir: Path) -> None:
    status = runs.read_status(job_dir)
    job_card(job_dir, status)
    if status.get("state") not in ACTIVE_STATES:
        st.rerun()


# ---------------------------------------------------------------- results

def _cell(value: float, interval, signed: bool = False) -> str:
    lo, hi = interval or (None, None)
    fmt = "{:+.3f}" if signed else "{:.3f}"
    return fmt.format(value) + (f"  [{fmt.format(lo)}, {fmt.format(hi)}]" if lo is not None else "")


def results_panel(results: dict, rows: list[dict]) -> None:
    """Base vs tuned: the metrics with 95% intervals, bars, and which queries improved or got worse."""
    iv = results.get("intervals", {})
    st.markdown(f"**Base vs tuned** on {results['queries']:,} test queries, each ranked against all "
                f"{results['documents']:,} documents · 95% bootstrap intervals over queries")
    table = pd.DataFrame([{"Metric": name, "Base": _cell(results["base"][m], iv.get("base", {}).get(m)),
                           "Tuned": _cell(results["tuned"][m], iv.get("tuned", {}).get(m)),
                           "Change": _cell(results["delta"][m], iv.get("delta", {}).get(m), signed=True)}
                          for m, name in METRIC_NAMES.items()])
    left, right = st.columns([1, 1])
    left.dataframe(table, hide_index=True, width="stretch")
    with right:
        names = list(METRIC_NAMES.items())
        ui.chart(charts.metric_bars_figure({**results["base"], "confidence_95": iv.get("base", {})},
                                           {**results["tuned"], "confidence_95": iv.get("tuned", {})}, names),
                 key="emb_bars")
    ch = results.get("changes", {})
    c = st.columns(3)
    c[0].metric("Queries improved", ch.get("improved", 0), border=True, help="NDCG@10 higher after tuning.")
    c[1].metric("Queries worse", ch.get("worse", 0), border=True, help="NDCG@10 lower after tuning.")
    c[2].metric("Unchanged", ch.get("same", 0), border=True)
    show = st.pills("Show", ["improved", "worse", "same"], default=["improved", "worse"], selection_mode="multi",
                    key="emb_changes") or []
    picked = sorted((r for r in rows if r.get("change") in show), key=lambda r: r.get("delta", 0))
    st.dataframe(pd.DataFrame([{"Query": r["query"], "Relevant": ", ".join(r["relevant"]),
                                "Base NDCG@10": r["base_ndcg@10"], "Tuned NDCG@10": r.get("tuned_ndcg@10"),
                                "Change": r.get("delta"), "Base rank": r.get("base_rank"),
                                "Tuned rank": r.get("tuned_rank")} for r in picked],
                              columns=["Query", "Relevant", "Base NDCG@10", "Tuned NDCG@10", "Change", "Base rank",
                                       "Tuned rank"]),
                 hide_index=True, width="stretch", height=320,
                 column_config={"Change": st.column_config.NumberColumn(format="%+.3f"),
                                "Base rank": st.column_config.NumberColumn(help="Rank of the first relevant document "
                                                                                "(empty: not in the top 100)")})


# ---------------------------------------------------------------- search playground

@st.cache_resource(max_entries=3, show_spinner="Loading the embedding model…")
def _embedder(name: str, ws: str, stamp: int):
    from core.embed.models import load_embedder

    return load_embedder(name, ws)


def embedder(name: str, ws: Path):
    from core.embed.models import resolve_embed_model

    location = resolve_embed_model(name, ws)
    return _embedder(name, str(ws), _mtime(str(Path(location) / "model.safetensors"))), location


def run_search(ws: Path, job_dir: Path, data: EmbedSet, query: str, base_name: str, k: int = 10) -> dict:
    """Top-k of the base and the tuned model (corpus embeddings from the job's cache when its evaluation
    made them, else computed now and kept there)."""
    from core.embed.search import corpus_embeddings, relevant_to, search

    _, relevant = relevant_to(data, query)
    out = {"relevant": sorted(relevant)}
    for side, name in (("base", base_name), ("tuned", str(job_dir / TUNED_DIR))):
        model, location = embedder(name, ws)
        ids, emb = corpus_embeddings(model, data, location, job_dir / CACHE_DIR)
        out[side] = search(model, query, data, ids, emb, k=k, relevant=relevant)
    return out


def _hits(hits: list[dict]) -> None:
    for h in hits:
        mark = ":green-badge[:material/check: relevant]" if h["relevant"] else ""
        text = " ".join(h["text"].split())
        st.markdown(f"**{h['rank']}.** `{h['corpus_id']}` · {h['score']:.3f} {mark}  \n"
                    f":gray[{text[:220]}{'…' if len(text) > 220 else ''}]")


def playground(ws: Path, job_dir: Path, data: EmbedSet, config: dict) -> None:
    examples = [data.queries[q] for q in list(data.relevant(data.test))[:50]]

    def use_example():
        st.session_state["emb_query"] = st.session_state.get("emb_example") or ""

    c1, c2 = st.columns([3, 2])
    c2.selectbox("Or pick a test query", [""] + examples, key="emb_example", on_change=use_example,
                 help="Test queries were never seen in tuning; their relevant document is marked.")
    query = c1.text_input("Query", key="emb_query", placeholder="e.g. Perl module to parse MediaWiki dump files").strip()
    if st.button("Search", type="primary", icon=":material/search:", key="emb_search", disabled=not query):
        try:
            with st.spinner("Ranking the corpus (the first search of a model embeds every document)…"):
                st.session_state["emb_found"] = (str(job_dir), query, run_search(ws, job_dir, data, query, config.get("model")))
        except (EmbedModelError, DataError, OSError) as e:
            st.error(f"**Search failed:** {e}", icon=":material/error:")
    found = st.session_state.get("emb_found")
    if not found or found[0] != str(job_dir):
        return
    _, asked, result = found
    if not result["relevant"]:
        st.caption(f"“{asked}” is not one of the set's queries, so no document is marked relevant.")
    left, right = st.columns(2)
    for col, side, title in ((left, "base", f"Base · {config.get('model')}"), (right, "tuned", "Tuned")):
        with col:
            st.markdown(f"**{title}**")
            _hits(result[side])
