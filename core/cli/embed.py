"""`studio embed`: embedding-model tuning. check (the data report, exit 1 if unusable), tune (a job on the
job road: in-batch negatives, live NDCG@10, then base vs tuned on the test queries), evaluate (NDCG@10,
MRR@10, Recall@1/10, MAP@100 with bootstrap intervals: a job's stored results, or models scored now) and
search (a query's top documents from the base and the tuned model, relevant ones marked).

Data: the three files (--corpus, --queries, --train and optionally --test labels), a pairs file (--pairs),
or --sample, the Debian set in assets/embeddings/."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from core.cli.common import fail, model_arg, name_arg, start_run, workspace
from core.config import BUNDLED_EMBED_MODEL, ConfigError, EmbedTuneConfig
from core.data import DataError, printable
from core.embed.data import EmbedSet, check_report, load_embed_set, recommend_steps, sample_files
from core.embed.models import CACHE_DIR, EMBED_JOB_PREFIX, EmbedModelError
from core.names import DEVICES, EMBED_DIR, FINAL_STATES

JOB_ID = name_arg("embedding job id", max_len=100)


def _absolute(path: str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None


def _files(a) -> dict:
    """load_embed_set's arguments from the data flags (absolute paths: a job reads them from elsewhere)."""
    if a.sample:
        files = sample_files()
    else:
        files = {"corpus": _absolute(a.corpus), "queries": _absolute(a.queries), "train": _absolute(a.train),
                 "test": _absolute(a.test), "pairs": _absolute(a.pairs), "test_pairs": _absolute(a.test_pairs)}
    return {**files, "test_fraction": a.test_fraction, "seed": a.seed}


def _load(a) -> EmbedSet:
    return load_embed_set(**_files(a))


def format_check(report: dict) -> str:
    c = report["counts"]
    verdict = "usable" if report["usable"] else f"NOT USABLE: {report['why_not']}"
    lines = [f"{verdict} ({report['format'].replace('_', ' ')})",
             (f"{c['documents']} documents, {c['queries']} queries; train: {c['train_pairs']} pairs over "
              f"{c['train_queries']} queries; test: {c['test_queries']} queries ({c['test_labels']} relevant labels)")]
    lines += [f"note: {n}" for n in report["notes"]]
    for title, items in (("problems (rows left out)", report["problems"]), ("warnings", report["warnings"])):
        if items:
            lines.append(f"{len(items)} {title}:")
            for p in items[:50]:
                where = ":".join(str(x) for x in (p["file"], p["line"]) if x not in ("", None))
                field = f" [{p['field']}]" if p["field"] else ""
                lines.append(f"  {where}{field}: {p['problem']}")
            if len(items) > 50:
                lines.append(f"  … and {len(items) - 50} more (--json lists them all)")
    return "\n".join(lines)


def cmd_check(a) -> int:
    try:
        report = check_report(_load(a))
    except DataError as e:
        report = {"usable": False, "why_not": str(e), "format": "unreadable", "files": {}, "notes": [],
                  "counts": {k: 0 for k in ("documents", "queries", "train_pairs", "train_queries", "test_queries",
                                            "test_labels")},
                  "problems": [{"file": Path(e.file).name if e.file else "", "line": e.line, "field": e.field or "",
                                "problem": e.message, "hint": e.hint or "", "kind": e.kind or ""}], "warnings": []}
    print(printable(json.dumps(report, ensure_ascii=False) if a.json else format_check(report)))
    return 0 if report["usable"] else 1


def cmd_tune(a) -> int:
    ws = workspace(a)
    try:
        files = _files(a)
        data = load_embed_set(**files)
        report = check_report(data)
        if not report["usable"]:
            return fail(f"the data cannot tune: {report['why_not']} (studio embed check lists every problem)")
        steps, why = (a.steps, f"{a.steps} steps as asked.") if a.steps else \
            recommend_steps(report["counts"]["train_pairs"], a.batch_size)
        cfg = EmbedTuneConfig(corpus=files.get("corpus"), queries=files.get("queries"), train_labels=files.get("train"),
                              test_labels=files.get("test"), pairs=files.get("pairs"), test_pairs=files.get("test_pairs"),
                              test_fraction=a.test_fraction, model=a.model, max_iterations=steps,
                              batch_size=a.batch_size, learning_rate=a.learning_rate, max_seq_length=a.max_seq_length,
                              eval_every=a.eval_every or max(1, steps // 4), eval_queries=a.eval_queries,
                              evaluate=not a.no_evaluate, lora_rank=a.lora_rank, device=a.device, seed=a.seed,
                              name=a.name or "")
    except (DataError, ConfigError) as e:
        return fail(str(e))
    from core import jobs

    job_dir = jobs.create_embed_tune(ws, cfg)
    state = start_run(job_dir, why, wait=a.wait, as_json=a.json, label="embedding job",
                      stream=sys.stderr if a.json else sys.stdout)
    from core.embed.evaluate import read_results

    results, _ = read_results(job_dir)
    if a.json:
        print(json.dumps({"job_id": job_dir.name, "job_dir": str(job_dir), "status": state,
                          "model_dir": str(job_dir / "model"), "results": results}))
    elif results:
        print(format_results(results))
        print(f"tuned model: {job_dir / 'model'}  (or --tuned {EMBED_JOB_PREFIX}{job_dir.name})")
    return 0 if state not in FINAL_STATES or state == "succeeded" else 1


def format_results(results: dict) -> str:
    from core.embed.evaluate import METRIC_NAMES

    iv = results.get("intervals", {})
    tuned = "tuned" in results
    lines = [f"{results['queries']} test queries against {results['documents']} documents"]
    lines.append(f"{'':<10} {'base':>22}" + (f" {'tuned':>22} {'change':>22}" if tuned else ""))
    def cell(side: str, m: str) -> str:
        lo, hi = iv.get(side, {}).get(m, [None, None])
        value = results[side][m]
        return f"{value:+.4f} [{lo:+.3f}, {hi:+.3f}]" if side == "delta" else f"{value:.4f} [{lo:.3f}, {hi:.3f}]"

    for m, name in METRIC_NAMES.items():
        lines.append(f"{name:<10} {cell('base', m):>22}"
                     + (f" {cell('tuned', m):>22} {cell('delta', m):>22}" if tuned else ""))
    if tuned:
        ch = results.get("changes", {})
        lines.append(f"per query (NDCG@10): {ch.get('improved', 0)} improved, {ch.get('worse', 0)} worse, "
                     f"{ch.get('same', 0)} unchanged")
    return "\n".join(lines)


def cmd_evaluate(a) -> int:
    from core.embed import evaluate
    from core.embed.models import load_embedder, resolve_embed_model

    ws = workspace(a)
    if a.job:
        results, _ = evaluate.read_results(ws / EMBED_DIR / a.job)
        if results is None:
            return fail(f"embedding job `{a.job}` has no results (yet); `studio embed tune --wait` makes them")
    else:
        try:
            data = _load(a)
            base = load_embedder(a.model, ws, a.device)
            tuned = load_embedder(a.tuned, ws, a.device) if a.tuned else None
            results, _ = evaluate.compare(base, tuned, data, base_location=resolve_embed_model(a.model, ws),
                                          tuned_location=resolve_embed_model(a.tuned, ws) if a.tuned else None,
                                          seed=a.seed)
        except (DataError, EmbedModelError) as e:
            return fail(str(e))
    print(json.dumps(results) if a.json else format_results(results))
    return 0


def cmd_search(a) -> int:
    from core.embed.models import load_embedder, resolve_embed_model
    from core.embed.search import corpus_embeddings, relevant_to, search
    from core.models import model_cache_dir

    ws = workspace(a)
    try:
        data = _load(a)
        out = {}
        _, relevant = relevant_to(data, a.query)
        # a job's folder keeps the corpus embeddings of its base and tuned model (made by its evaluation)
        cache = (Path(resolve_embed_model(a.tuned, ws)).parent / CACHE_DIR
                 if a.tuned and a.tuned.startswith(EMBED_JOB_PREFIX) else model_cache_dir(ws) / "embedding-corpus-cache")
        for side, name in (("base", a.model), ("tuned", a.tuned)):
            if not name:
                continue
            model = load_embedder(name, ws, a.device)
            ids, emb = corpus_embeddings(model, data, resolve_embed_model(name, ws), cache)
            out[side] = search(model, a.query, data, ids, emb, k=a.k, relevant=relevant)
    except (DataError, EmbedModelError) as e:
        return fail(str(e))
    if a.json:
        print(json.dumps({"query": a.query, "relevant": sorted(relevant), **out}, ensure_ascii=False))
        return 0
    if not relevant:
        print("(the query is not one of the set's queries: no document is marked relevant)")
    for side, hits in out.items():
        print(f"{side}:")
        for h in hits:
            mark = "✓" if h["relevant"] else " "
            text = " ".join(h["text"].split())
            print(f" {mark} {h['rank']:>2}. {h['score']:.3f}  {h['corpus_id']}: {text[:90]}{'…' if len(text) > 90 else ''}")
    return 0


def _data_flags(p) -> None:
    p.add_argument("--sample", action="store_true", help="the Debian sample set in assets/embeddings/")
    p.add_argument("--corpus", help='documents: JSONL of {"_id", "title", "text"}')
    p.add_argument("--queries", help='queries: JSONL of {"_id", "text"}')
    p.add_argument("--train", help="train labels: TSV query-id, corpus-id, score (with a header)")
    p.add_argument("--test", help="test labels (default: --test-fraction of the train labels' queries)")
    p.add_argument("--pairs", help="instead of the three files: query/positive pairs (JSONL, CSV, Parquet)")
    p.add_argument("--test-pairs", help="test pairs for --pairs (default: a split of it)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="share of queries held out without test labels")
    p.add_argument("--seed", type=int, default=0)


def add_parsers(sub, common) -> None:
    e = sub.add_parser("embed", parents=[common], help="embedding-model tuning: check, tune, evaluate, search")
    esub = e.add_subparsers(dest="embed_command", required=True)
    c = esub.add_parser("check", parents=[common], help="report counts and every problem; exit 1 if unusable")
    _data_flags(c)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_check)

    t = esub.add_parser("tune", parents=[common], help="tune an embedding model as a job; base vs tuned at the end")
    _data_flags(t)
    t.add_argument("--model", type=model_arg, default=BUNDLED_EMBED_MODEL,
                   help="base model: the bundled MiniLM, a sentence-transformers id or a local folder")
    t.add_argument("--steps", type=int, help="optimizer steps (default: one pass over the training pairs)")
    t.add_argument("--batch-size", type=int, default=32, help="pairs per step (in-batch negatives)")
    t.add_argument("--learning-rate", type=float, default=EmbedTuneConfig.learning_rate)
    t.add_argument("--max-seq-length", type=int, default=EmbedTuneConfig.max_seq_length)
    t.add_argument("--eval-every", type=int, help="live NDCG@10 every N steps (default: four times a run)")
    t.add_argument("--eval-queries", type=int, default=EmbedTuneConfig.eval_queries,
                   help="test queries of the live metric (0: none)")
    t.add_argument("--no-evaluate", action="store_true", help="skip scoring base and tuned after tuning")
    t.add_argument("--lora-rank", type=int, default=0, help="LoRA adapters of this rank instead of every weight")
    t.add_argument("--device", default="auto", choices=DEVICES)
    t.add_argument("--name")
    t.add_argument("--wait", action="store_true", help="block until the job ends, showing progress")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_tune)

    v = esub.add_parser("evaluate", parents=[common], help="NDCG@10, MRR@10, Recall@1/10, MAP@100 with intervals")
    v.add_argument("--job", type=JOB_ID, help="show a finished embedding job's results")
    _data_flags(v)
    v.add_argument("--model", type=model_arg, default=BUNDLED_EMBED_MODEL, help="the base model")
    v.add_argument("--tuned", type=model_arg, help="a tuned model: embed:JOB_ID, a folder or an id")
    v.add_argument("--device", default="auto", choices=DEVICES)
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_evaluate)

    s = esub.add_parser("search", parents=[common], help="a query's top documents, base and tuned side by side")
    s.add_argument("query")
    _data_flags(s)
    s.add_argument("--model", type=model_arg, default=BUNDLED_EMBED_MODEL, help="the base model")
    s.add_argument("--tuned", type=model_arg, help="a tuned model: embed:JOB_ID, a folder or an id")
    s.add_argument("-k", type=int, default=10, help="documents per model")
    s.add_argument("--device", default="auto", choices=DEVICES)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_search)
