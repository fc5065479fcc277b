"""Task metrics with the reference workflow's names, and base-vs-tuned evaluation of a run.

classification: per-label precision, recall, f1_score, support; macro/micro/weighted; confusion matrix
(scikit-learn). summarization: ROUGE-1/2/L/Lsum precision/recall/F1 (rouge-score). Every result carries
evaluation_status: how many rows produced an answer out of how many were asked."""
from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

from core import runs
from core.config import GenerationConfig, TuneConfig
from core.data import load_dataset
from core.templates import default_template, render_prompt

OFF_LABEL = "(off-label)"
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def parse_label(answer: str, labels: list[str]) -> str | None:
    """The label an answer names: an exact (case-insensitive) match of its first line, else the longest
    label that appears in it as a word; None when it names none."""
    first = answer.strip().splitlines()[0] if answer.strip() else ""
    first = first.strip().strip(".:;!\"'`*").strip().lower()
    by_lower = {label.lower(): label for label in labels}
    if first in by_lower:
        return by_lower[first]
    for label in sorted(labels, key=len, reverse=True):
        if re.search(rf"(?<!\w){re.escape(label.lower())}(?!\w)", first):
            return label
    return None


def classification_metrics(y_true: list[str], y_pred: list[str | None], labels: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = sorted(set(labels) | set(y_true))
    pred = [p if p in labels else OFF_LABEL for p in y_pred]
    p, r, f, s = precision_recall_fscore_support(y_true, pred, labels=labels, zero_division=0)
    # Averages over the labels that occur (as truth or as an answer), as scikit-learn does by default:
    # a class absent from a small eval slice and never predicted would otherwise count as F1 = 0.
    seen = sorted(set(y_true) | (set(pred) - {OFF_LABEL}))
    avg = {a: precision_recall_fscore_support(y_true, pred, labels=seen, average=a, zero_division=0)[:3]
           for a in ("macro", "micro", "weighted")}
    cm_labels = labels + [OFF_LABEL]
    return {
        "accuracy": float(accuracy_score(y_true, pred)),
        **{f"{a}_{k}": float(v) for a, vals in avg.items() for k, v in zip(("precision", "recall", "f1"), vals)},
        "off_label_count": sum(1 for x in pred if x == OFF_LABEL),
        "per_label": [{"label": lab, "precision": float(p[i]), "recall": float(r[i]), "f1_score": float(f[i]),
                       "support": int(s[i])} for i, lab in enumerate(labels)],
        "confusion_matrix": {"labels": cm_labels,
                             "matrix": confusion_matrix(y_true, pred, labels=cm_labels).tolist()},
    }


def summarization_metrics(references: list[str], predictions: list[str]) -> dict:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = {f"{t}_{k}": 0.0 for t in ROUGE_TYPES for k in ("precision", "recall", "f1")}
    for ref, pred in zip(references, predictions):
        scores = scorer.score(ref, pred)
        for t in ROUGE_TYPES:
            totals[f"{t}_precision"] += scores[t].precision
            totals[f"{t}_recall"] += scores[t].recall
            totals[f"{t}_f1"] += scores[t].fmeasure
    n = max(1, len(references))
    return {k: v / n for k, v in totals.items()}


def task_metrics(task: str, references: list[str], answers: list[str | None], labels: list[str]) -> dict:
    """Metrics over the rows that produced an answer (None marks a failed row)."""
    ok = [(r, a) for r, a in zip(references, answers) if a is not None]
    status = {"num_successful_rows": len(ok), "num_total_rows": len(references)}
    refs, outs = [r for r, _ in ok], [a for _, a in ok]
    if task == "classification":
        metrics = classification_metrics(refs, [parse_label(a, labels) for a in outs], labels)
    else:
        metrics = summarization_metrics(refs, outs)
    return {"evaluation_status": status, **metrics}


def default_generation(task: str, tokenizer, labels: list[str]) -> GenerationConfig:
    if task == "classification":
        longest = max((len(tokenizer(x).input_ids) for x in labels), default=4)
        return GenerationConfig(max_output_tokens=longest + 4, batch_size=16)
    return GenerationConfig(max_output_tokens=64, batch_size=8)


def _answers(model, tokenizer, prompts, cfg, progress) -> list[str | None]:
    """Generate batch by batch; a failing batch marks its rows failed instead of failing the job."""
    from core.generate import generate_texts

    out: list[str | None] = []
    for i in range(0, len(prompts), cfg.batch_size):
        batch = prompts[i:i + cfg.batch_size]
        try:
            out.extend(generate_texts(model, tokenizer, batch, cfg))
        except RuntimeError as e:  # e.g. out of memory on one long batch
            print(f"rows {i}-{i + len(batch) - 1} failed: {e}", flush=True)
            out.extend([None] * len(batch))
        progress(len(batch))
    return out


def run_evaluation(workspace: str | Path, data: str | Path, task: str, run_dir: str | Path | None = None,
                   model: str | None = None, limit: int | None = None, template: str | None = None,
                   out_dir: str | Path | None = None, device: str = "auto",
                   progress: Callable[[int, int], None] | None = None,
                   input_column: str | None = None, output_column: str | None = None) -> dict:
    """Evaluate the base model (and, with run_dir, the tuned run on the same rows).
    Writes metrics.json, predictions.jsonl and status.json into out_dir; returns {"base": …, "tuned": …}."""
    from core.models import load_model

    cfg = TuneConfig.from_dict(runs.read_json(Path(run_dir) / "config.json")) if run_dir else None
    dataset = load_dataset(data, input_column or (cfg.input_column if cfg else None),
                           output_column or (cfg.output_column if cfg else None))
    rows = dataset.examples[:limit] if limit else dataset.examples
    labels = (cfg.labels if cfg and cfg.labels else dataset.labels) if task == "classification" else []
    template = template or (cfg.template if cfg else default_template(task, labels))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = Path(out_dir or (Path(run_dir) / "evals" if run_dir else Path(workspace) / "evals")
                   / f"{Path(data).stem}-{stamp}")
    out_dir.mkdir(parents=True, exist_ok=True)
    passes = 2 if run_dir else 1
    total = passes * len(rows)
    done = 0

    def tick(n):
        nonlocal done
        done += n
        runs.update_status(out_dir, state="running", phase="generating", done=done, total=total,
                           heartbeat_ts=time.time())
        if progress:
            progress(done, total)

    runs.update_status(out_dir, state="running", done=0, total=total, pid=os.getpid(),
                       heartbeat_ts=time.time(), phase="loading model")
    try:
        lm, tokenizer, _ = load_model(cfg.model if cfg else (model or ""), workspace, device,
                                      adapter=Path(run_dir) / "adapter" if run_dir else None)
        prompts = [render_prompt(tokenizer, template, r["input_text"]) for r in rows]
        gen = default_generation(task, tokenizer, labels)
        refs = [r["output_text"] for r in rows]
        answers = {}
        if run_dir:
            with lm.disable_adapter():
                answers["base"] = _answers(lm, tokenizer, prompts, gen, tick)
            answers["tuned"] = _answers(lm, tokenizer, prompts, gen, tick)
        else:
            answers["base"] = _answers(lm, tokenizer, prompts, gen, tick)
        result = {name: task_metrics(task, refs, a, labels) for name, a in answers.items()}
    except BaseException as exc:
        runs.update_status(out_dir, state="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    preds = []
    for i, r in enumerate(rows):
        row = {"line": r["line"], "input_text": r["input_text"], "reference": r["output_text"]}
        for name, a in answers.items():
            row[name] = a[i]
            if task == "classification" and a[i] is not None:
                row[f"{name}_label"] = parse_label(a[i], labels)
        preds.append(row)
    runs.write_json(out_dir / "metrics.json", {
        "task": task, "data": str(data), "rows": len(rows), "template": template,
        "model": cfg.model if cfg else model, "run_id": Path(run_dir).name if run_dir else None,
        "created": runs.now_iso(), **result})
    with open(out_dir / "predictions.jsonl", "w", encoding="utf-8") as f:
        for row in preds:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    runs.update_status(out_dir, state="succeeded", phase="done", done=total, total=total, finished=runs.now_iso())
    return result
