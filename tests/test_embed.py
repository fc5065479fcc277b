"""Embedding tuning (core.embed) on a tiny random encoder: the three-file format loads and bad files get
line-level problems, the split never puts a query on both sides (nor a sample-set package), NDCG@10 and
the rest equal hand-computed values and the library's own averages, tuning moves the weights and saves a
folder plain SentenceTransformer(path) loads, evaluation and search give what they say."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ASSETS

from core import jobs, runs
from core.cli import main
from core.config import ConfigError, EmbedTuneConfig
from core.embed import evaluate
from core.embed.data import check_report, load_embed_set, sample_files, split_labels
from core.embed.models import TUNED_DIR, EmbedModelError, bundled_embed_dir, resolve_embed_model
from core.embed.search import corpus_embeddings, rank, search
from core.worker import run_job

TOPICS = ["chess game", "email client", "image editor", "music player", "web browser", "text editor",
          "database server", "compiler", "font", "radio tool", "math library", "video player"]


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    """A 2-layer BERT with hidden size 32 (random weights) and the bundled MiniLM's tokenizer, saved as a
    sentence-transformers folder (transformer, mean pooling, normalize)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(bundled_embed_dir())
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=4, intermediate_size=64, max_position_embeddings=128))
    raw = tmp_path_factory.mktemp("tiny-bert")
    bert.save_pretrained(raw)
    tok.save_pretrained(raw)
    model = SentenceTransformer(modules=[Transformer(str(raw), max_seq_length=64), Pooling(32, "mean"), Normalize()],
                                device="cpu")
    out = tmp_path_factory.mktemp("tiny-encoder")
    model.save(str(out))
    return out


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def toy_set(tmp_path) -> dict:
    """12 documents, 12 queries (one per document), train labels for 9 and test labels for 3."""
    corpus = write(tmp_path / "corpus.jsonl", [json.dumps({"_id": f"d{i}", "title": t.title(),
                                                           "text": f"A {t} for Debian, with many features."})
                                               for i, t in enumerate(TOPICS)])
    queries = write(tmp_path / "queries.jsonl", [json.dumps({"_id": f"q{i}", "text": f"a {t}"})
                                                 for i, t in enumerate(TOPICS)])
    train = write(tmp_path / "train.tsv", ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{i}\t1" for i in range(9)])
    test = write(tmp_path / "test.tsv", ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{i}\t1" for i in range(9, 12)])
    return {"corpus": str(corpus), "queries": str(queries), "train": str(train), "test": str(test)}


# ---------------------------------------------------------------- data

def test_three_files_load(toy_set):
    data = load_embed_set(**toy_set)
    assert not data.problems and not data.warnings
    assert data.counts() == {"documents": 12, "queries": 12, "train_queries": 9, "train_pairs": 9,
                             "test_queries": 3, "test_labels": 3}
    assert data.doc_text("d0") == "Chess Game A chess game for Debian, with many features."
    assert data.pairs(data.train)[0] == ("a chess game", data.doc_text("d0"))
    assert check_report(data)["usable"] is False  # 9 training pairs are fewer than 10


def test_bad_files_get_line_level_problems(tmp_path, toy_set):
    corpus = write(tmp_path / "bad_corpus.jsonl", [
        '{"_id": "d1", "title": "", "text": "first"}', '{"_id": "d2", "text": ""}', "{not json",
        '{"_id": "d1", "text": "again"}', '{"text": "no id"}', '{"_id": "d3", "text": "first"}'])
    queries = write(tmp_path / "bad_queries.jsonl", ['{"_id": "q1", "text": "one"}', '{"_id": "q2", "text": "two"}'])
    labels = write(tmp_path / "bad.tsv", ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q1\td9\t1", "q7\td1\t1",
                                          "q2\td3\tx", "q2\td3\t0", "q1\td1\t1", "q1"])
    data = load_embed_set(corpus=corpus, queries=queries, train=labels)
    got = {(Path(e.file).name, e.line, e.field, e.kind) for e in data.problems}
    assert got == {("bad_corpus.jsonl", 2, "text", "empty text"), ("bad_corpus.jsonl", 3, None, "invalid JSON"),
                   ("bad_corpus.jsonl", 4, "_id", "duplicate id"), ("bad_corpus.jsonl", 5, "_id", "no id"),
                   ("bad.tsv", 3, "corpus-id", "unknown corpus id"), ("bad.tsv", 4, "query-id", "unknown query id"),
                   ("bad.tsv", 5, "score", "bad score"), ("bad.tsv", 7, None, "duplicate label"),
                   ("bad.tsv", 8, None, "wrong field count")}
    assert {(Path(e.file).name, e.line, e.kind) for e in data.warnings} == {
        ("bad_corpus.jsonl", 6, "duplicate text"), ("bad.tsv", 6, "no relevant document")}
    assert data.train == {"q1": {"d1": 1.0}} and data.test == {}  # q2 has no relevant document: not split
    report = check_report(data)
    assert not report["usable"] and "training pairs" in report["why_not"]
    # a label file without its header is refused as a whole, naming line 1
    headless = write(tmp_path / "headless.tsv", ["q1\td1\t1"])
    with pytest.raises(Exception) as e:
        load_embed_set(corpus=corpus, queries=queries, train=headless)
    assert getattr(e.value, "line", None) == 1 and "header" in str(e.value)


def test_pairs_format_and_split_by_query(tmp_path):
    rows = [{"query": f"query {i % 40}", "positive": f"document number {i}"} for i in range(60)]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows + [{"query": "", "positive": "x"}]))
    data = load_embed_set(pairs=path, test_fraction=0.25)
    assert data.format == "pairs" and len(data.problems) == 1 and data.problems[0].line == 61
    assert not set(data.train) & set(data.test)  # a query's labels all go to one side
    assert len(data.test) == 10 and len(data.train) == 30 and len(data.pairs(data.train)) + len(data.pairs(data.test)) == 60
    assert data.notes and "split by query" in data.notes[0]
    again = load_embed_set(pairs=path, test_fraction=0.25)
    assert again.test == data.test  # the same file always splits the same way
    train, test = split_labels({f"q{i}": {"d": 1.0} for i in range(10)}, 0.2, seed=1)
    assert len(test) == 2 and not set(train) & set(test)


def test_sample_set_has_no_leakage():
    data = load_embed_set(**sample_files())
    assert not data.problems
    c = data.counts()
    assert c["train_pairs"] >= 2000 and c["test_queries"] >= 300
    assert not set(data.train) & set(data.test)
    train_docs = {d for docs in data.train.values() for d in docs}
    test_docs = {d for docs in data.test.values() for d in docs}
    assert not train_docs & test_docs  # document ids are package names: no package on both sides
    train_queries = {data.queries[q].lower() for q in data.train}
    assert not any(data.queries[q].lower() in train_queries for q in data.test)
    assert (ASSETS / "embeddings" / "README.md").exists()
    assert sum(p.stat().st_size for p in (ASSETS / "embeddings").iterdir()) < 4_000_000


def test_config_and_model_names(tmp_path, tiny_encoder):
    with pytest.raises(ConfigError):
        EmbedTuneConfig()  # no data
    with pytest.raises(ConfigError):
        EmbedTuneConfig(pairs="p.jsonl", batch_size=1)
    assert Path(resolve_embed_model(None)) == bundled_embed_dir()
    assert resolve_embed_model(str(tiny_encoder)) == str(tiny_encoder.resolve())
    for bad in ("embed:../../etc", "embed:nope", "not a model!"):
        with pytest.raises(EmbedModelError):
            resolve_embed_model(bad, tmp_path)


# ---------------------------------------------------------------- metrics

def test_query_metrics_equal_hand_computed_values():
    hits = [{"corpus_id": c, "score": 1.0 - i / 10} for i, c in enumerate(["a", "r1", "b", "r2", "c"])]
    m = evaluate.query_metrics(hits, {"r1", "r2"})
    import math
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    assert m["ndcg@10"] == pytest.approx(dcg / idcg)
    assert m["mrr@10"] == pytest.approx(0.5) and m["first_relevant_rank"] == 2
    assert m["recall@1"] == 0 and m["recall@10"] == 1
    assert m["map@100"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    miss = evaluate.query_metrics(hits, {"zzz"})
    assert miss["ndcg@10"] == 0 and miss["first_relevant_rank"] is None


def test_library_averages_equal_the_mean_of_per_query_values(tiny_encoder, toy_set, monkeypatch):
    from sentence_transformers import SentenceTransformer

    import core.models

    # fp32 on both paths: a random encoder's embeddings lie so close together that bf16 reorders them
    monkeypatch.setattr(core.models, "use_bf16", lambda device: False)
    data = load_embed_set(**toy_set)
    model = SentenceTransformer(str(tiny_encoder), device="cpu")
    scored = evaluate.score_model(model, data, {**data.train, **data.test})
    per = scored["per_query"]
    assert len(per) == 12
    for name in evaluate.METRICS:
        assert scored["metrics"][name] == pytest.approx(sum(v[name] for v in per.values()) / 12)
    # and the evaluator run the usual way (it encodes itself) agrees
    relevant = data.relevant({**data.train, **data.test})
    ev = evaluate.ir_evaluator(dict(data.queries), {c: data.doc_text(c) for c in data.corpus}, relevant)
    assert ev(model)["test_cosine_ndcg@10"] == pytest.approx(scored["metrics"]["ndcg@10"], abs=1e-9)


# ---------------------------------------------------------------- tuning, evaluation, search

def test_tuning_moves_the_weights_and_saves_a_loadable_folder(workspace, tiny_encoder, toy_set, tmp_path):
    import torch
    from sentence_transformers import SentenceTransformer

    # 20 training pairs: the 9 labels twice over plus two more queries per document is plenty for a tiny run
    labels = write(tmp_path / "more.tsv", ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{i}\t1" for i in range(9)]
                   + [f"q{i}\td{(i + 1) % 9}\t1" for i in range(9)] + ["q0\td2\t1", "q1\td3\t1"])
    cfg = EmbedTuneConfig(corpus=toy_set["corpus"], queries=toy_set["queries"], train_labels=str(labels),
                          test_labels=toy_set["test"], model=str(tiny_encoder), max_iterations=6, batch_size=4,
                          learning_rate=1e-3, eval_every=3, eval_queries=3, device="cpu")
    job_dir = jobs.create_embed_tune(workspace, cfg)
    assert [j["id"] for j in jobs.list_jobs(workspace, "embed_tune")] == [job_dir.name]
    run_job(job_dir)  # as the worker runs it
    status = runs.read_status(job_dir)
    assert status["state"] == "succeeded" and status["step"] == 6 and status["train_pairs"] == 20
    metrics = runs.read_metrics(job_dir)
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2, 3, 4, 5, 6]
    assert [m["step"] for m in metrics if "eval_ndcg_at_10" in m] == [0, 3, 6]  # at the start and every 3 steps

    before = SentenceTransformer(str(tiny_encoder), device="cpu")
    after = SentenceTransformer(str(job_dir / TUNED_DIR), device="cpu")  # plain loading, no studio code
    moved = [not torch.equal(a, b) for a, b in zip(before.state_dict().values(), after.state_dict().values())]
    assert sum(moved) > len(moved) // 2
    assert (job_dir / TUNED_DIR / "modules.json").exists() and not (job_dir / "checkpoints").exists()

    results, rows = evaluate.read_results(job_dir)
    assert results["queries"] == 3 and results["documents"] == 12 and len(rows) == 3
    for side in ("base", "tuned"):
        assert set(results[side]) == set(evaluate.METRICS)
        for m in evaluate.METRICS:
            lo, hi = results["intervals"][side][m]
            assert lo - 1e-9 <= results[side][m] <= hi + 1e-9
    assert sum(results["changes"].values()) == 3
    for r in rows:
        assert r["delta"] == pytest.approx(r["tuned_ndcg@10"] - r["base_ndcg@10"], abs=1e-3)
        assert r["change"] == ("improved" if r["delta"] > 0 else "worse" if r["delta"] < 0 else "same")
    assert any((job_dir / "embeddings_cache").glob("*.npy"))  # kept for the search playground


def test_lora_tuning_saves_a_plain_folder(workspace, tiny_encoder, toy_set, tmp_path):
    from sentence_transformers import SentenceTransformer

    labels = write(tmp_path / "more.tsv", ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{j}\t1" for i in range(9)
                                                                            for j in (i, (i + 1) % 9)])
    cfg = EmbedTuneConfig(corpus=toy_set["corpus"], queries=toy_set["queries"], train_labels=str(labels),
                          test_labels=toy_set["test"], model=str(tiny_encoder), max_iterations=2, batch_size=4,
                          eval_queries=0, evaluate=False, lora_rank=4, device="cpu")
    job_dir = jobs.create_embed_tune(workspace, cfg)
    run_job(job_dir)
    assert runs.read_status(job_dir)["state"] == "succeeded"
    assert not list((job_dir / TUNED_DIR).glob("adapter_*"))  # merged: a standard folder
    model = SentenceTransformer(str(job_dir / TUNED_DIR), device="cpu")
    assert model.encode(["a chess game"]).shape == (1, 32)
    assert evaluate.read_results(job_dir) == (None, [])  # evaluate=False


def test_search_ranks_and_marks_relevant(tiny_encoder, toy_set, tmp_path):
    from sentence_transformers import SentenceTransformer

    data = load_embed_set(**toy_set)
    model = SentenceTransformer(str(tiny_encoder), device="cpu")
    ids, emb = corpus_embeddings(model, data, tiny_encoder, tmp_path / "cache")
    cached = list((tmp_path / "cache").glob("*.npy"))
    assert len(cached) == 1
    ids2, emb2 = corpus_embeddings(model, data, tiny_encoder, tmp_path / "cache")  # read back
    assert ids2 == ids and (emb2 == emb).all()
    hits = search(model, "a chess game", data, ids, emb, k=5)
    assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert sum(h["relevant"] for h in hits) == (1 if "d0" in [h["corpus_id"] for h in hits] else 0)
    # a document's own text as the query ranks that document first
    own = search(model, data.doc_text("d5"), data, ids, emb, k=3, relevant={"d5"})
    assert own[0]["corpus_id"] == "d5" and own[0]["relevant"]
    assert rank(model, emb[:2], emb, ids, k=100)[0][0]["corpus_id"] == ids[0]


def test_cli_check_and_evaluate(tiny_encoder, toy_set, workspace, capsys, tmp_path):
    assert main(["embed", "check", "--sample", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["usable"] and report["counts"]["test_queries"] == 500
    bad = write(tmp_path / "bad.tsv", ["query-id\tcorpus-id\tscore", "q1\tnope\t1"])
    assert main(["embed", "check", "--corpus", toy_set["corpus"], "--queries", toy_set["queries"],
                 "--train", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "bad.tsv:2 [corpus-id]: unknown document id `nope`" in out
    args = ["--corpus", toy_set["corpus"], "--queries", toy_set["queries"], "--train", toy_set["train"],
            "--test", toy_set["test"], "--model", str(tiny_encoder), "--device", "cpu"]
    assert main(["embed", "evaluate", *args, "--tuned", str(tiny_encoder), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["queries"] == 3 and results["delta"]["ndcg@10"] == 0 and results["changes"]["same"] == 3
    assert main(["embed", "search", "a chess game", *args, "-k", "3", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["relevant"] == ["d0"] and len(found["base"]) == 3
    with pytest.raises(SystemExit):  # a job id that is a path is refused before anything is read
        main(["embed", "evaluate", "--job", "../x"])


def test_cli_tune_makes_a_job_the_worker_runs(tiny_encoder, toy_set, workspace, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(jobs, "submit", lambda d: "queued")  # the worker runs below, in this process
    labels = write(tmp_path / "more.tsv", ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{j}\t1" for i in range(9)
                                                                            for j in (i, (i + 1) % 9)])
    assert main(["embed", "tune", "--corpus", toy_set["corpus"], "--queries", toy_set["queries"], "--train",
                 str(labels), "--test", toy_set["test"], "--model", str(tiny_encoder), "--batch-size", "4",
                 "--eval-queries", "0", "--device", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    job = runs.read_json(Path(out["job_dir"]) / "job.json")
    assert job["kind"] == "embed_tune" and job["config"]["max_iterations"] == 10  # 18 pairs / 4: kept to 10
    assert job["config"]["train_labels"] == str(labels.resolve()) and out["status"] == "queued"
    run_job(out["job_dir"])
    capsys.readouterr()  # the trainer's log lines (a worker writes them to worker.log)
    assert main(["embed", "evaluate", "--job", out["job_id"], "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["queries"] == 3 and set(results["tuned"]) == set(results["base"])
