"""Embedding tuning on sentence-transformers' own trainer: SentenceTransformerTrainer with
MultipleNegativesRankingLoss (in-batch negatives: every other pair's document in the batch is a negative
for each query) and the no-duplicates batch sampler (a text twice in one batch would be its own negative).
run_embed_tuning(job_dir) reads job.json and writes the job folder as tuning runs do: status.json (step,
ETA, phase), metrics.jsonl (loss every step, eval_ndcg_at_10 … every eval_every steps, from the library's
InformationRetrievalEvaluator on up to eval_queries test queries), then model/ (a standard
sentence-transformers folder: SentenceTransformer(path) loads it) and, unless turned off, base vs tuned
on every test query (core.embed.evaluate: results.json, per_query.jsonl). core.worker runs it."""
from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

from core import job_queue, jobs, runs
from core.config import EmbedTuneConfig
from core.data import DataError
from core.embed import evaluate
from core.embed.data import EmbedSet, check_report, load_embed_set
from core.embed.models import TUNED_DIR, load_embedder, resolve_embed_model
from core.models import describe_device, pick_device, use_bf16
from core.monitor import Worker, make_callback, peak_memory_mb
from core.names import CANCEL_FILE, CHECKPOINTS_DIR

# The live metric's key in metrics.jsonl for each library metric (the library names them
# "<evaluator name>_cosine_ndcg@10" and so on; "@" is left out of field names the charts read).
LIVE_CORPUS = 5  # documents per live query
LIVE_METRICS = {"ndcg@10": "eval_ndcg_at_10", "mrr@10": "eval_mrr_at_10", "recall@10": "eval_recall_at_10"}


def live_subset(data: EmbedSet, limit: int) -> tuple[dict, dict, dict]:
    """Queries, corpus and relevant documents of the live metric: the first `limit` test queries (in the
    queries file's order) against their relevant documents and the corpus's first others, LIVE_CORPUS
    documents per query in all, so an eval point costs seconds, not minutes. Its numbers follow the
    trend; the final evaluation ranks every test query against the whole corpus."""
    relevant = data.relevant(data.test)
    qids = [q for q in data.queries if q in relevant][:limit]
    docs = list(dict.fromkeys(c for q in qids for c in sorted(relevant[q])))
    wanted = max(len(docs), LIVE_CORPUS * len(qids))
    have = set(docs)
    docs += [c for c in data.corpus if c not in have][:max(0, wanted - len(docs))]
    return ({q: data.queries[q] for q in qids}, {c: data.doc_text(c) for c in docs},
            {q: relevant[q] for q in qids})


def metrics_callback(worker: Worker, studio_callback):
    """Writes the evaluator's numbers at each eval point into metrics.jsonl, on the same clock as the
    loss lines that core.monitor's callback writes."""
    from transformers import TrainerCallback

    class EmbedMetrics(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, **kw):
            rec = {"step": state.global_step,
                   "time": round(time.time() - getattr(studio_callback, "t0", time.time()), 2)}
            for key, value in (metrics or {}).items():
                for name, field in LIVE_METRICS.items():
                    if key.endswith(f"_{name}") and isinstance(value, (int, float)):
                        rec[field] = round(float(value), 4)
            if len(rec) > 2 and worker.main:
                runs.append_metrics(worker.run_dir, rec)
            worker.status(phase="training")

    return EmbedMetrics()


def _lora(model, rank: int) -> None:
    """LoRA adapters on the transformer's linear layers (peft); merged back before saving."""
    from peft import LoraConfig, get_peft_model

    module = model[0]
    module.auto_model = get_peft_model(module.auto_model, LoraConfig(
        r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear", task_type="FEATURE_EXTRACTION"))


def _unlora(model) -> None:
    module = model[0]
    if hasattr(module.auto_model, "merge_and_unload"):
        module.auto_model = module.auto_model.merge_and_unload()


def save_model(model, target: Path) -> None:
    """The model as a sentence-transformers folder, written beside the target and renamed into place."""
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}"
    model.save(str(tmp))
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)


def run_embed_tuning(job_dir: str | Path, worker: Worker | None = None):
    """Tune as job.json says; returns the tuned SentenceTransformer. Failures propagate (core.worker
    records them)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    started = time.time()
    job_dir = Path(job_dir)
    worker = worker or Worker(job_dir)
    cfg = EmbedTuneConfig.from_dict(jobs.read_job(job_dir).get("config") or {})
    workspace = job_queue.workspace_of(job_dir)
    data = load_embed_set(**cfg.data_files())
    report = check_report(data)
    if not report["usable"]:
        raise DataError(report["why_not"], hint="Run `studio embed check` (or the page's data check) for every problem.")
    device = pick_device(cfg.device)
    bf16 = use_bf16(device)
    pairs = data.pairs(data.train)
    worker.status(phase="loading model", device=describe_device(device), precision="bf16" if bf16 else "fp32",
                  train_pairs=len(pairs), test_queries=report["counts"]["test_queries"], max_steps=cfg.max_iterations)
    location = resolve_embed_model(cfg.model, workspace)
    model = load_embedder(cfg.model, workspace, device)
    eval_length = model.max_seq_length
    limit = getattr(model.tokenizer, "model_max_length", None) or cfg.max_seq_length
    model.max_seq_length = min(cfg.max_seq_length, limit)
    if cfg.lora_rank:
        _lora(model, cfg.lora_rank)

    evaluator = None
    if cfg.eval_queries:
        queries, corpus, relevant = live_subset(data, cfg.eval_queries)
        evaluator = evaluate.ir_evaluator(queries, corpus, relevant, name="live")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(job_dir / CHECKPOINTS_DIR), max_steps=cfg.max_iterations, learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=64, warmup_steps=0.1,
        lr_scheduler_type="linear", batch_sampler=BatchSamplers.NO_DUPLICATES, logging_steps=1, seed=cfg.seed,
        eval_strategy="steps" if evaluator else "no", eval_steps=cfg.eval_every, eval_on_start=bool(evaluator),
        save_strategy="no", report_to="none", disable_tqdm=True, bf16=bf16, use_cpu=device == "cpu",
        dataloader_num_workers=0)
    studio = make_callback(worker, cfg.max_iterations)
    trainer = SentenceTransformerTrainer(
        model=model, args=args, loss=MultipleNegativesRankingLoss(model), evaluator=evaluator,
        train_dataset=Dataset.from_dict({"anchor": [q for q, _ in pairs], "positive": [d for _, d in pairs]}),
        callbacks=[studio, metrics_callback(worker, studio)])
    worker.status(phase="training")
    output = trainer.train()
    cancelled = (job_dir / CANCEL_FILE).exists()
    if cfg.lora_rank:
        _unlora(model)
    model.max_seq_length = eval_length
    worker.status(phase="saving the model")
    if worker.main:
        save_model(model, job_dir / TUNED_DIR)
        shutil.rmtree(job_dir / CHECKPOINTS_DIR, ignore_errors=True)  # only a cancel writes one; the model is saved
    train_seconds = round(output.metrics["train_runtime"], 2)
    worker.status(tuning_s=round(time.time() - started, 1))  # reading the data, loading, training, saving
    if cfg.evaluate and not cancelled and worker.main:
        worker.status(phase="scoring base and tuned on the test queries", step=trainer.state.global_step)
        base = load_embedder(cfg.model, workspace, device)
        results, rows = evaluate.compare(base, model.eval(), data, base_location=location,
                                         tuned_location=job_dir / TUNED_DIR, cache_dir=evaluate.cache_dir_of(job_dir),
                                         seed=cfg.seed)
        results.update(model=cfg.model, train_seconds=train_seconds, steps=trainer.state.global_step)
        evaluate.save(job_dir, results, rows)
    worker.status(state="cancelled" if cancelled else "succeeded", finished=runs.now_iso(), phase="done",
                  step=trainer.state.global_step, train_seconds=train_seconds,
                  peak_memory_mb=round(peak_memory_mb(device)))
    return model
