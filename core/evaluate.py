"""Base-vs-tuned evaluation of a run (or of a base model alone) on an eval set, as a job: get the answers
batch by batch (classification by default scores each label by log-likelihood, core.label_scoring;
else generation, free or constrained to the labels; a failed batch marks its rows failed, never the
job), score them with core.metrics, and write metrics.json (with the mode used) and predictions.jsonl
(with per-row scores) into the job folder; core.worker keeps its status.json. Also: the evaluation
folders of a workspace, read back for the pages."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from core import runs
from core.config import EvalConfig, GenerationConfig, TuneConfig
from core.data import load_dataset
from core.generate import generate_texts, label_sequences
from core.label_scoring import DEFAULT_BATCH_SIZE, content_free_prompts, score_labels, top_two
from core.metrics import confidence_intervals, parse_label, row_scores, task_metrics
from core.models import load_model
from core.names import ADAPTER_DIR, CONFIG_FILE, EVAL_METRICS_FILE, JOB_FOLDERS, PREDICTIONS_FILE, RUNS_DIR, \
    STATUS_FILE
from core.templates import render_fitted_prompt, render_prompt, template_for


def row_change(base: float | None, tuned: float | None, margin: float = 0.1) -> tuple[float | None, str]:
    """How tuning changed one row: fixed (better by more than margin), broken (worse), unchanged."""
    if base is None or tuned is None:
        return None, "failed"
    delta = tuned - base
    return delta, "fixed" if delta > margin else "broken" if delta < -margin else "unchanged"


def default_generation(task: str, tokenizer, labels: list[str]) -> GenerationConfig:
    if task == "classification":
        # Room for a short sentence: a base model that answers in words is scored off-label for what it
        # said, not cut off before it could name a class. A tuned model stops at end-of-text anyway.
        longest = max((len(tokenizer(x).input_ids) for x in labels), default=4)
        return GenerationConfig(max_output_tokens=max(32, longest + 4), batch_size=16)
    return GenerationConfig(max_output_tokens=64, batch_size=8)


def run_evaluation(workspace: str | Path, cfg: EvalConfig, out_dir: str | Path,
                   progress: Callable[[int, int], None] | None = None) -> dict:
    """Evaluate the base model (and, with cfg.run_id, the tuned run on the same rows; the tuned run alone
    when cfg.score_base is False). Writes metrics.json and predictions.jsonl (with per-row scores) into
    out_dir; returns {"base": …, "tuned": …}.
    progress(done, total) is called as answers come in."""
    run_dir = runs.run_path(workspace, cfg.run_id) if cfg.run_id else None
    if run_dir is not None and not (run_dir / ADAPTER_DIR).is_dir():
        raise ValueError(f"run {cfg.run_id} has no adapter yet (state: {runs.read_status(run_dir).get('state')})")
    run_cfg = TuneConfig.from_dict(runs.read_json(run_dir / CONFIG_FILE)) if run_dir else None
    dataset = load_dataset(cfg.data, cfg.input_column or (run_cfg.input_column if run_cfg else None),
                           cfg.output_column or (run_cfg.output_column if run_cfg else None))
    rows = dataset.examples[:cfg.limit] if cfg.limit else dataset.examples
    labels = (run_cfg.labels if run_cfg and run_cfg.labels else dataset.labels) if cfg.task == "classification" else []
    if cfg.mode in ("score", "constrained") and not labels:
        raise ValueError(f"mode {cfg.mode} needs a label set, and {Path(cfg.data).name} has none")
    template = template_for(run_cfg.to_dict() if run_cfg else None, cfg.task, labels, cfg.template)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    both = run_dir is not None and cfg.score_base  # a run's base model too, or the one model named
    total = (2 if both else 1) * len(rows)
    done = [0]

    def answers_of(lm, tokenizer, prompts, gen, only) -> tuple[list[str | None], list[dict | None] | None]:
        """All answers in one length-sorted pass; a failing batch marks its rows failed (None). In score
        mode, also each row's label log-likelihoods."""
        start = done[0]

        def step(n_done, _total):
            done[0] = start + n_done
            if progress:
                progress(done[0], total)

        if cfg.mode == "score":
            scored = score_labels(lm, tokenizer, prompts, labels, batch_size=cfg.batch_size or DEFAULT_BATCH_SIZE,
                                  progress=step, keep_going=True, calibration=cfg.calibration,
                                  content_free=content_free_prompts(lambda text: render_prompt(tokenizer, template, text)))
            return [s and s["label"] for s in scored], scored
        return generate_texts(lm, tokenizer, prompts, gen, progress=step, only=only, keep_going=True), None

    if progress:
        progress(0, total)
    lm, tokenizer, _ = load_model(run_cfg.model if run_cfg else cfg.model, workspace, cfg.device,
                                  adapter=run_dir / ADAPTER_DIR if run_dir else None)
    # A run is asked within the length it was tuned at (room left for the longest label); a base model alone
    # reads whole rows.
    room = run_cfg.max_seq_length - max(map(len, label_sequences(tokenizer, labels)), default=0) if run_cfg else None
    fitted = [render_fitted_prompt(tokenizer, template, r["input_text"], room) for r in rows]
    prompts = [prompt for prompt, _ in fitted]
    gen = default_generation(cfg.task, tokenizer, labels)
    if cfg.batch_size:
        gen.batch_size = cfg.batch_size
    only = label_sequences(tokenizer, labels) if cfg.mode == "constrained" else None
    answers, scored = {}, {}
    started = time.perf_counter()
    if run_dir:
        if both:
            with lm.disable_adapter():
                answers["base"], scored["base"] = answers_of(lm, tokenizer, prompts, gen, only)
        answers["tuned"], scored["tuned"] = answers_of(lm, tokenizer, prompts, gen, only)
    else:
        answers["base"], scored["base"] = answers_of(lm, tokenizer, prompts, gen, only)
    seconds = time.perf_counter() - started
    refs = [r["output_text"] for r in rows]
    result = {name: task_metrics(cfg.task, refs, a, labels) for name, a in answers.items()}
    for name, a in answers.items():
        result[name]["confidence_95"] = confidence_intervals(cfg.task, refs, a, labels, cfg.seed)
    write_predictions(out_dir / PREDICTIONS_FILE, cfg.task, rows, answers, scored, labels)
    # metrics.json last: its presence means the evaluation is complete.
    runs.write_json(out_dir / EVAL_METRICS_FILE, {
        "task": cfg.task, "data": str(cfg.data), "rows": len(rows), "template": template,
        "model": run_cfg.model if run_cfg else cfg.model, "run_id": cfg.run_id, "mode": cfg.mode,
        **({"calibration": cfg.calibration} if cfg.mode == "score" else {}),
        **({"max_prompt_tokens": room, "shortened_rows": sum(cut for _, cut in fitted)} if room else {}),
        **({"labels": labels} if labels else {}), "generation_seconds": round(seconds, 2),
        "rows_per_second": round(len(answers) * len(rows) / max(seconds, 1e-9), 3),
        "created": runs.now_iso(), **result})
    return result


def write_predictions(path: Path, task: str, rows: list[dict], answers: dict, scored: dict,
                      labels: list[str]) -> None:
    """predictions.jsonl: per row the answers, their scores and, for classification, the label each
    answer is; in score mode also the chosen label's log-likelihood and the runner-up's."""
    refs = [r["output_text"] for r in rows]
    scores = {name: row_scores(task, refs, a, labels) for name, a in answers.items()}
    with open(path, "w", encoding="utf-8") as f:
        for i, r in enumerate(rows):
            row = {"line": r["line"], "input_text": r["input_text"], "reference": r["output_text"]}
            for name, a in answers.items():
                row[name] = a[i]
                row[f"{name}_score"] = scores[name][i]
                if task == "classification" and a[i] is not None:
                    row[f"{name}_label"] = parse_label(a[i], labels)
                if scored.get(name):
                    row.update({f"{name}_{k}": v for k, v in top_two(scored[name][i]).items()})
            if "tuned" in answers and "base" in answers:
                row["delta"], row["change"] = row_change(row["base_score"], row["tuned_score"])
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- evaluation folders, read back

def eval_status(out_dir: str | Path) -> dict:
    """status.json of an evaluation folder; one whose metrics.json exists is complete (also one written
    by an older version without a status)."""
    status = runs.read_status(out_dir)
    if (Path(out_dir) / EVAL_METRICS_FILE).exists():
        return {**status, "state": "succeeded"}
    return status


def list_evaluations(workspace: str | Path) -> list[dict]:
    """Evaluation folders of every run and of the workspace, newest first."""
    workspace = Path(workspace)
    run_names: dict[Path, str] = {}  # a run with several evaluations is read once
    out = []
    for d in (d for pattern in JOB_FOLDERS["evaluate"] for d in workspace.glob(pattern)):
        marker = next((d / f for f in (STATUS_FILE, EVAL_METRICS_FILE) if (d / f).exists()), None)
        if d.is_dir() and marker is not None:
            run_dir = d.parent.parent if d.parent.parent.parent == workspace / RUNS_DIR else None
            if run_dir is not None and run_dir not in run_names:
                run_names[run_dir] = runs.display_name(run_dir)
            status = eval_status(d)
            out.append({"dir": str(d), "name": d.name, "run_id": run_dir.name if run_dir else None, "status": status,
                        "title": status.get("name") or d.name,  # what it scored, on which run, by name
                        "run_name": run_names.get(run_dir), "mtime": marker.stat().st_mtime_ns})
    return sorted(out, key=lambda e: e["mtime"], reverse=True)


def read_evaluation(out_dir: str | Path) -> tuple[dict, list[dict]]:
    """(metrics.json, predictions rows) of a finished evaluation ({} and [] before it finishes)."""
    out_dir = Path(out_dir)
    return runs.read_json(out_dir / EVAL_METRICS_FILE, {}) or {}, runs.read_jsonl(out_dir / PREDICTIONS_FILE)


def scored_predictions(metrics: dict, rows: list[dict]) -> list[dict]:
    """Prediction rows with base_score / tuned_score / delta / change: as stored, or, for an evaluation
    written before per-row scores were stored, scored now by the rules run_evaluation applies."""
    if not rows or "base_score" in rows[0]:
        return rows
    labels = [r["label"] for r in (metrics.get("base") or {}).get("per_label", [])]
    refs = [str(r.get("reference")) for r in rows]
    rows = [dict(r) for r in rows]
    for name in ("base", "tuned"):
        if name in rows[0]:
            answers = [None if r.get(name) is None else str(r[name]) for r in rows]
            for r, score in zip(rows, row_scores(metrics.get("task", ""), refs, answers, labels)):
                r[f"{name}_score"] = score
    if "tuned_score" in rows[0]:
        for r in rows:
            r["delta"], r["change"] = row_change(r["base_score"], r["tuned_score"])
    return rows
