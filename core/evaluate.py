"""Base-vs-tuned evaluation of a run (or of a base model alone) on an eval set, as a job: generate the
answers batch by batch (a failed batch marks its rows failed, never the job), score them with
core.metrics, and write metrics.json, predictions.jsonl (with per-row scores) and status.json."""
from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

from core import runs
from core.config import GenerationConfig, TuneConfig
from core.data import load_dataset
from core.metrics import TASK_TYPES, confidence_intervals, parse_label, row_scores, task_metrics
from core.templates import default_template, render_prompt

def row_change(base: float | None, tuned: float | None, margin: float = 0.1) -> tuple[float | None, str]:
    """How tuning changed one row: fixed (better by more than margin), broken (worse), unchanged."""
    if base is None or tuned is None:
        return None, "failed"
    delta = tuned - base
    return delta, "fixed" if delta > margin else "broken" if delta < -margin else "unchanged"


def default_generation(task: str, tokenizer, labels: list[str]) -> GenerationConfig:
    if task == "classification":
        longest = max((len(tokenizer(x).input_ids) for x in labels), default=4)
        return GenerationConfig(max_output_tokens=longest + 4, batch_size=16)
    return GenerationConfig(max_output_tokens=64, batch_size=8)


def _answers(model, tokenizer, prompts, cfg, progress, only=None) -> list[str | None]:
    """All answers in one length-sorted pass; a failing batch marks its rows failed (None)."""
    from core.generate import generate_texts

    done = [0]

    def step(n_done, _total):
        progress(n_done - done[0])
        done[0] = n_done

    return generate_texts(model, tokenizer, prompts, cfg, progress=step, only=only, keep_going=True)


def run_evaluation(workspace: str | Path, data: str | Path, task: str, run_dir: str | Path | None = None,
                   model: str | None = None, limit: int | None = None, template: str | None = None,
                   out_dir: str | Path | None = None, device: str = "auto",
                   progress: Callable[[int, int], None] | None = None,
                   input_column: str | None = None, output_column: str | None = None,
                   constrained: bool = False, batch_size: int | None = None, seed: int = 0) -> dict:
    """Evaluate the base model (and, with run_dir, the tuned run on the same rows). `constrained`
    (classification): answers can only be labels. Writes metrics.json, predictions.jsonl (with per-row
    scores) and status.json into out_dir; returns {"base": …, "tuned": …}."""
    from core.generate import label_sequences
    from core.models import load_model

    if task not in TASK_TYPES:
        raise ValueError(f"task must be one of {', '.join(TASK_TYPES)}, got {task!r}")

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
        if batch_size:
            gen.batch_size = batch_size
        only = label_sequences(tokenizer, labels) if (constrained and task == "classification") else None
        refs = [r["output_text"] for r in rows]
        answers = {}
        started = time.perf_counter()
        if run_dir:
            with lm.disable_adapter():
                answers["base"] = _answers(lm, tokenizer, prompts, gen, tick, only)
            answers["tuned"] = _answers(lm, tokenizer, prompts, gen, tick, only)
        else:
            answers["base"] = _answers(lm, tokenizer, prompts, gen, tick, only)
        seconds = time.perf_counter() - started
        result = {name: task_metrics(task, refs, a, labels) for name, a in answers.items()}
        for name, a in answers.items():
            result[name]["confidence_95"] = confidence_intervals(task, refs, a, labels, seed)
    except BaseException as exc:
        runs.update_status(out_dir, state="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    scores = {name: row_scores(task, refs, a, labels) for name, a in answers.items()}
    preds = []
    for i, r in enumerate(rows):
        row = {"line": r["line"], "input_text": r["input_text"], "reference": r["output_text"]}
        for name, a in answers.items():
            row[name] = a[i]
            row[f"{name}_score"] = scores[name][i]
            if task == "classification" and a[i] is not None:
                row[f"{name}_label"] = parse_label(a[i], labels)
        if "tuned" in answers:
            row["delta"], row["change"] = row_change(row["base_score"], row["tuned_score"])
        preds.append(row)
    runs.write_json(out_dir / "metrics.json", {
        "task": task, "data": str(data), "rows": len(rows), "template": template,
        "model": cfg.model if cfg else model, "run_id": Path(run_dir).name if run_dir else None,
        "mode": "constrained" if only else "free", "generation_seconds": round(seconds, 2),
        "rows_per_second": round(len(answers) * len(rows) / max(seconds, 1e-9), 3),
        "created": runs.now_iso(), **result})
    with open(out_dir / "predictions.jsonl", "w", encoding="utf-8") as f:
        for row in preds:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    runs.update_status(out_dir, state="succeeded", phase="done", done=total, total=total, finished=runs.now_iso())
    return result
