"""Encoding and ranking: texts to embeddings (bf16 autocast where the device has it), the corpus's
embeddings kept on disk per model and corpus (the search playground answers a query by encoding the query
alone), and the top documents of a query with the relevant ones marked. Loads torch when called."""
from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

import numpy as np

from core.embed.data import EmbedSet
from core.embed.models import autocast

ENCODE_BATCH = 64


def encode(model, texts: list[str], batch_size: int = ENCODE_BATCH) -> np.ndarray:
    """float32 embeddings of `texts`, as the model's own encode makes them."""
    if not texts:
        return np.zeros((0, model.get_sentence_embedding_dimension() or 0), dtype=np.float32)
    with autocast(str(model.device)):
        out = model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(out, dtype=np.float32)


def model_key(location: str | Path) -> str:
    """What identifies a model's weights for the cache: its folder and the time its weights were written
    (a folder tuned again gets new embeddings), or a hub id as it is."""
    path = Path(location)
    if path.is_dir():
        stamps = [f"{p.name}:{p.stat().st_mtime_ns}" for p in sorted(path.glob("*.safetensors"))]
        return f"{path.resolve()}|{'|'.join(stamps)}"
    return str(location)


def corpus_key(data: EmbedSet, ids: list[str]) -> str:
    h = hashlib.sha1()
    for cid in ids:
        h.update(cid.encode("utf-8", "replace") + b"\0" + data.doc_text(cid).encode("utf-8", "replace") + b"\0")
    return h.hexdigest()


def corpus_embeddings(model, data: EmbedSet, location: str | Path | None = None,
                      cache_dir: str | Path | None = None) -> tuple[list[str], np.ndarray]:
    """(document ids, their embeddings), read from `cache_dir` when this model already embedded this
    corpus, else computed (and stored there, atomically)."""
    ids = list(data.corpus)
    if cache_dir is None or location is None:
        return ids, encode(model, [data.doc_text(c) for c in ids])
    key = hashlib.sha1(f"{model_key(location)}\n{corpus_key(data, ids)}".encode()).hexdigest()[:20]
    path = Path(cache_dir) / f"{key}.npy"
    if path.exists():
        try:
            emb = np.load(path, allow_pickle=False)
            if emb.shape[0] == len(ids):
                return ids, emb
        except (OSError, ValueError):
            pass  # torn or foreign: computed again below
    emb = encode(model, [data.doc_text(c) for c in ids])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(3)}.npy")
    np.save(tmp, emb, allow_pickle=False)
    os.replace(tmp, path)
    (path.parent / f"{key}.json").write_text(json.dumps({"model": str(location), "documents": len(ids)}))
    return ids, emb


def rank(model, query_emb: np.ndarray, corpus_emb: np.ndarray, corpus_ids: list[str], k: int = 100
         ) -> list[list[dict]]:
    """Per query, the k best documents as {"corpus_id", "score"}, by the model's own similarity, ordered by
    score and then by corpus id (the order sentence-transformers' evaluator ranks ties in)."""
    import torch

    if len(corpus_ids) == 0 or len(query_emb) == 0:
        return [[] for _ in range(len(query_emb))]
    scores = model.similarity(torch.from_numpy(query_emb), torch.from_numpy(corpus_emb)).float()
    top = min(k, len(corpus_ids))
    # a few more than k, so documents tied with the k-th are all seen before the tie-break by id
    values, index = torch.topk(scores, min(len(corpus_ids), top + 8), dim=1)
    out = []
    for vals, idx in zip(values.tolist(), index.tolist()):
        hits = sorted(({"corpus_id": corpus_ids[i], "score": float(v)} for v, i in zip(vals, idx)),
                      key=lambda h: (-h["score"], h["corpus_id"]))
        out.append(hits[:top])
    return out


def relevant_to(data: EmbedSet, query: str) -> tuple[str | None, set[str]]:
    """A typed query that is one of the set's queries (same text, case and spaces aside): its id and the
    documents labeled relevant to it in the train or test labels."""
    wanted = " ".join(query.split()).lower()
    for qid, text in data.queries.items():
        if " ".join(text.split()).lower() == wanted:
            docs = {c for lab in (data.train, data.test) for c, s in lab.get(qid, {}).items() if s > 0}
            return qid, docs
    return None, set()


def search(model, query: str, data: EmbedSet, corpus_ids: list[str], corpus_emb: np.ndarray, k: int = 10,
           relevant: set[str] | None = None) -> list[dict]:
    """The top-k documents for `query`: rank, id, score, title, text and whether it is labeled relevant."""
    if relevant is None:
        relevant = relevant_to(data, query)[1]
    hits = rank(model, encode(model, [query]), corpus_emb, corpus_ids, k)[0]
    return [{"rank": i, "corpus_id": h["corpus_id"], "score": round(h["score"], 4),
             "title": data.corpus[h["corpus_id"]].get("title", ""), "text": data.corpus[h["corpus_id"]]["text"],
             "relevant": h["corpus_id"] in relevant} for i, h in enumerate(hits, start=1)]
