"""The Embeddings page through the real navigation: the sample set's check and a started job, line-level
problems of bad files, and a finished job (tuned for real on the tiny encoder) with its before/after
results and the search playground ranking base and tuned side by side. Drawing the page writes nothing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import open_page
from test_embed import tiny_encoder, toy_set, write  # noqa: F401 -- fixtures
from test_pages_readonly import snapshot

from core import jobs, runs
from core.config import EmbedTuneConfig
from core.worker import run_job


@pytest.fixture
def finished_job(ws, tiny_encoder, toy_set, tmp_path):  # noqa: F811
    labels = write(tmp_path / "more.tsv", ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{j}\t1" for i in range(9)
                                                                            for j in (i, (i + 1) % 9)])
    cfg = EmbedTuneConfig(corpus=toy_set["corpus"], queries=toy_set["queries"], train_labels=str(labels),
                          test_labels=toy_set["test"], model=str(tiny_encoder), max_iterations=4, batch_size=4,
                          learning_rate=1e-3, eval_every=2, eval_queries=3, device="cpu", name="toy tuning")
    job_dir = jobs.create_embed_tune(ws, cfg)
    run_job(job_dir)
    assert runs.read_status(job_dir)["state"] == "succeeded"
    return job_dir


def texts(at, kind: str) -> list[str]:
    return [e.value for e in at.get(kind)]


def test_sample_set_is_checked_and_a_job_starts(ws, monkeypatch):
    submitted = []
    monkeypatch.setattr(jobs, "submit", lambda d: submitted.append(Path(d)) or "queued")
    at = open_page("embeddings")
    values = {m.label: m.value for m in at.metric}
    assert values["Documents"] == "4,500" and values["Training pairs"] == "3,000" and values["Test queries"] == "500"
    assert any("Ready" in s for s in texts(at, "success"))
    assert any("No embedding jobs yet" in i for i in texts(at, "info"))
    assert at.number_input(key="emb_steps::94").value == 94  # one pass over 3,000 pairs at batch 32
    at.button(key="emb_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(submitted) == 1
    job = json.loads((submitted[0] / "job.json").read_text())
    assert job["kind"] == "embed_tune" and job["config"]["max_iterations"] == 94
    assert job["config"]["corpus"].endswith("assets/embeddings/corpus.jsonl")
    assert at.selectbox(key="emb_job").value == str(submitted[0])  # the new job is shown
    assert any("Queued" in m.value for m in at.markdown)  # its card, with its state badge


def test_bad_files_show_their_problems(ws, toy_set, tmp_path):  # noqa: F811
    bad = write(tmp_path / "bad.tsv", ["query-id\tcorpus-id\tscore", "q1\tnope\t1", "q2\td2\tmany"])
    at = open_page("embeddings")
    at.radio(key="emb_source").set_value("paths").run()
    for role, path in (("corpus", toy_set["corpus"]), ("queries", toy_set["queries"]), ("train", str(bad))):
        at.text_input(key=f"emb_path_{role}").set_value(path).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Not usable yet" in e for e in texts(at, "error"))
    table = at.dataframe[0].value
    assert list(table["Line"]) == [2, 3] and list(table["Field"]) == ["corpus-id", "score"]
    assert "unknown document id `nope`" in table["Problem"][0]
    assert "emb_start" not in [b.key for b in at.button]  # no tuning form for unusable data
    at.text_input(key="emb_path_train").set_value("/etc/hostname").run()  # the page reads the workspace only
    assert any("outside the workspace" in e for e in texts(at, "error"))


def test_finished_job_shows_results_and_searches(ws, finished_job):
    before = snapshot(ws)
    at = open_page("embeddings")
    assert at.selectbox(key="emb_job").value == str(finished_job)
    assert "Before and after" in texts(at, "subheader") and "Search playground" in texts(at, "subheader")
    metrics_table = at.dataframe[0].value if len(at.dataframe) == 1 else next(
        d.value for d in at.dataframe if "Metric" in d.value.columns)
    assert list(metrics_table["Metric"]) == ["NDCG@10", "MRR@10", "Recall@1", "Recall@10", "MAP@100"]
    assert all("[" in cell for cell in metrics_table["Base"])  # each value with its interval
    changes = {m.label: m.value for m in at.metric}
    assert sum(int(changes[k]) for k in ("Queries improved", "Queries worse", "Unchanged")) == 3
    assert snapshot(ws) == before  # drawing read only

    at.selectbox(key="emb_example").set_value("a math library").run()  # a test query: its document is d10
    assert at.text_input(key="emb_query").value == "a math library"
    at.button(key="emb_search").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [m for m in texts(at, "markdown") if m.startswith("**") and "` · " in m]
    assert len(shown) == 2 * 10  # top 10 of base and of tuned (12 documents)
    marked = [m for m in shown if "relevant" in m]
    assert marked and all("`d10`" in m for m in marked)  # only the labeled document, wherever it ranks
    assert len(marked) == sum("`d10`" in m for m in shown)
