"""Retrieval quality of base and tuned on the test queries: NDCG@10, MRR@10, Recall@1, Recall@10 and
MAP@100 as sentence-transformers' InformationRetrievalEvaluator computes them (its own compute_metrics,
over rankings made here from embeddings kept for the search playground), bootstrap 95% intervals over
queries (paired: the same resamples for base, tuned and the difference), and per query: NDCG@10 before
and after, the rank of the first relevant document, improved / worse / same. Loads torch when called."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from core import runs
from core.embed.data import EmbedSet
from core.embed.models import CACHE_DIR, PER_QUERY_FILE, RESULTS_FILE, autocast
from core.embed.search import corpus_embeddings, encode, rank
from core.metrics import bootstrap

METRICS = ("ndcg@10", "mrr@10", "recall@1", "recall@10", "map@100")
METRIC_NAMES = {"ndcg@10": "NDCG@10", "mrr@10": "MRR@10", "recall@1": "Recall@1", "recall@10": "Recall@10",
                "map@100": "MAP@100"}
DEPTH = 100  # the deepest cut-off (MAP@100)
SAME = 1e-9  # a per-query change smaller than this is no change


def ir_evaluator(queries: dict[str, str], corpus: dict[str, str], relevant: dict[str, set[str]], model=None,
                 name: str = "test", batch_size: int = 64):
    """The library's evaluator with this module's cut-offs (also the live metric during tuning)."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    class Evaluator(InformationRetrievalEvaluator):
        """Encodes under bf16 autocast where the device has it (the trainer calls evaluators outside its
        own autocast): twice as fast on a bf16 CPU, the same rankings to 1e-5 in cosine."""

        def __call__(self, model, *args, **kwargs):
            with autocast(str(model.device)):
                return super().__call__(model, *args, **kwargs)

    extra = {"score_functions": {model.similarity_fn_name: model.similarity}} if model is not None else {}
    return Evaluator(queries=queries, corpus=corpus, relevant_docs=relevant, mrr_at_k=[10],
                                         ndcg_at_k=[10], accuracy_at_k=[1, 10], precision_recall_at_k=[1, 10],
                                         map_at_k=[DEPTH], batch_size=batch_size, name=name, write_csv=False,
                                         show_progress_bar=False, **extra)


def library_metrics(evaluator, hits: list[list[dict]]) -> dict[str, float]:
    """The evaluator's own averages over `hits` (one ranking per query, in evaluator.queries_ids order)."""
    s = evaluator.compute_metrics(hits)
    return {"ndcg@10": float(s["ndcg@k"][10]), "mrr@10": float(s["mrr@k"][10]),
            "recall@1": float(s["recall@k"][1]), "recall@10": float(s["recall@k"][10]),
            "map@100": float(s["map@k"][DEPTH])}


def query_metrics(hits: list[dict], relevant: set[str]) -> dict:
    """One query's values, as the library computes them before averaging (binary relevance), and the rank
    of its first relevant document within the top DEPTH (None when none is there)."""
    ids = [h["corpus_id"] for h in hits[:DEPTH]]
    rel = [c in relevant for c in ids]
    first = next((i + 1 for i, r in enumerate(rel) if r), None)
    dcg = sum(1.0 / np.log2(i + 2) for i, r in enumerate(rel[:10]) if r)
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(10, len(relevant))))
    found, precisions = 0, 0.0
    for i, r in enumerate(rel):
        if r:
            found += 1
            precisions += found / (i + 1)
    return {"ndcg@10": dcg / ideal if ideal else 0.0, "mrr@10": 1.0 / first if first and first <= 10 else 0.0,
            "recall@1": sum(rel[:1]) / len(relevant), "recall@10": sum(rel[:10]) / len(relevant),
            "map@100": precisions / min(DEPTH, len(relevant)), "first_relevant_rank": first}


def score_model(model, data: EmbedSet, labels: dict, location: str | Path | None = None,
                cache_dir: str | Path | None = None) -> dict:
    """One model on the labeled queries: {"metrics", "per_query": {qid: values}, "hits": {qid: top 10}}."""
    relevant = data.relevant(labels)
    qids = [q for q in data.queries if q in relevant]  # the evaluator's order
    ids, corpus_emb = corpus_embeddings(model, data, location, cache_dir)
    hits = rank(model, encode(model, [data.queries[q] for q in qids]), corpus_emb, ids, DEPTH)
    evaluator = ir_evaluator({q: data.queries[q] for q in qids}, {c: data.doc_text(c) for c in ids}, relevant, model)
    assert evaluator.queries_ids == qids
    return {"metrics": library_metrics(evaluator, hits),
            "per_query": {q: query_metrics(h, relevant[q]) for q, h in zip(qids, hits)},
            "hits": {q: [x["corpus_id"] for x in h[:10]] for q, h in zip(qids, hits)}}


def intervals(values: dict[str, list[float]], seed: int = 0) -> dict[str, list[float]]:
    """95% bootstrap intervals of the mean of each metric's per-query values."""
    def interval(arr: np.ndarray) -> list[float]:
        return [round(x, 4) for x in bootstrap(lambda idx: float(arr[idx].mean()), len(arr), seed)]

    return {m: interval(np.asarray(v, dtype=float)) for m, v in values.items()}


def compare(base, tuned, data: EmbedSet, labels: dict | None = None, *, base_location=None, tuned_location=None,
            cache_dir=None, seed: int = 0) -> tuple[dict, list[dict]]:
    """Base (and tuned, if given) on the test labels: (results, per-query rows). results = {"queries",
    "documents", "base", "tuned", "delta", "intervals": {"base", "tuned", "delta"}, "changes"}."""
    labels = data.test if labels is None else labels
    t0 = time.time()
    b = score_model(base, data, labels, base_location, cache_dir)
    t = score_model(tuned, data, labels, tuned_location, cache_dir) if tuned is not None else None
    qids = list(b["per_query"])
    per_metric = {side["name"]: {m: [side["r"]["per_query"][q][m] for q in qids] for m in METRICS}
                  for side in ({"name": "base", "r": b}, {"name": "tuned", "r": t}) if side["r"] is not None}
    results = {"queries": len(qids), "documents": len(data.corpus), "base": b["metrics"],
               "intervals": {"base": intervals(per_metric["base"], seed)}, "seconds": None}
    relevant = data.relevant(labels)
    rows = []
    for q in qids:
        row = {"query_id": q, "query": data.queries[q], "relevant": sorted(relevant[q]),
               "base_ndcg@10": round(b["per_query"][q]["ndcg@10"], 4), "base_rank": b["per_query"][q]["first_relevant_rank"],
               "base_top": b["hits"][q]}
        if t is not None:
            delta = t["per_query"][q]["ndcg@10"] - b["per_query"][q]["ndcg@10"]
            row.update({"tuned_ndcg@10": round(t["per_query"][q]["ndcg@10"], 4),
                        "tuned_rank": t["per_query"][q]["first_relevant_rank"], "tuned_top": t["hits"][q],
                        "delta": round(delta, 4),
                        "change": "improved" if delta > SAME else "worse" if delta < -SAME else "same"})
        rows.append(row)
    if t is not None:
        results["tuned"] = t["metrics"]
        results["delta"] = {m: round(t["metrics"][m] - b["metrics"][m], 4) for m in METRICS}
        results["intervals"]["tuned"] = intervals(per_metric["tuned"], seed)
        results["intervals"]["delta"] = intervals({m: list(np.subtract(per_metric["tuned"][m], per_metric["base"][m]))
                                                   for m in METRICS}, seed)
        results["changes"] = {c: sum(r["change"] == c for r in rows) for c in ("improved", "worse", "same")}
    results["seconds"] = round(time.time() - t0, 1)
    return results, rows


def save(job_dir: str | Path, results: dict, rows: list[dict]) -> None:
    job_dir = Path(job_dir)
    runs.write_jsonl(job_dir / PER_QUERY_FILE, rows)
    runs.write_json(job_dir / RESULTS_FILE, results)  # last: its presence says the evaluation is whole


def read_results(job_dir: str | Path) -> tuple[dict | None, list[dict]]:
    """(results.json, per-query rows) of an embedding job; (None, []) before its evaluation finished."""
    job_dir = Path(job_dir)
    results = runs.read_json(job_dir / RESULTS_FILE, None)
    if not isinstance(results, dict):
        return None, []
    return results, runs.read_jsonl(job_dir / PER_QUERY_FILE)


def cache_dir_of(job_dir: str | Path) -> Path:
    return Path(job_dir) / CACHE_DIR
