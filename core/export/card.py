"""The model card (README.md) that goes with every export: what the model is, what it learned from, how
it was tuned, how it scored, and how to ask it the way it was taught."""
from __future__ import annotations

from pathlib import Path

from core import runs
from core.evaluate import list_evaluations, read_evaluation

# Figures a card shows from the run's latest finished evaluation, in this order, where present.
CARD_METRICS = ("macro_f1", "accuracy", "rougeL", "rouge1", "rouge2", "bleu", "exact_match")


def latest_scores(workspace: str | Path, run_id: str) -> dict | None:
    """{"data", "rows", "metrics": {name: (base, tuned)}} of the run's newest finished evaluation that
    scored base and tuned side by side (else its newest that scored the tuned model)."""
    found = []
    for item in list_evaluations(workspace):
        if item["run_id"] != run_id or item["status"].get("state") != "succeeded":
            continue
        metrics, _ = read_evaluation(item["dir"])
        base, tuned = metrics.get("base") or {}, metrics.get("tuned") or {}
        scores = {k: (base.get(k), tuned.get(k)) for k in CARD_METRICS if isinstance(tuned.get(k), (int, float))}
        if scores:
            found.append({"data": Path(str(metrics.get("data", ""))).name, "rows": metrics.get("rows"),
                          "metrics": scores, "both": bool(base)})
    return next((f for f in found if f["both"]), found[0] if found else None)


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def model_card(workspace: str | Path, run_dir: str | Path, *, fmt: str, source: str, files: list[str],
               how_to_load: str, verification: dict | None = None) -> str:
    run_dir = Path(run_dir)
    config = runs.read_json(run_dir / "config.json", {}) or {}
    status = runs.read_status(run_dir)
    name = runs.display_name(run_dir)
    lora = config.get("lora") or {}
    lines = [f"# {name}", "",
             f"A LoRA tuning of `{config.get('model', '?').replace('bundled:', '')}` made with Tuning Studio, "
             f"exported as **{fmt}** from {source}.", "",
             "## Training", "",
             "| Setting | Value |", "|---|---|",
             f"| Base model | `{config.get('model', '?')}` |",
             f"| Task | {config.get('task', '?')} |",
             f"| Method | {config.get('method', 'sft')} |",
             f"| Data | {runs.dataset_label(config)} ({status.get('train_rows', '?')} training rows) |",
             f"| Steps | {status.get('step', '?')} of {config.get('max_iterations', '?')} "
             f"(best step {status.get('best_step', '–')}) |",
             f"| Learning rate | {config.get('learning_rate', '?')} |",
             f"| Batch size | {config.get('batch_size', '?')} |",
             f"| LoRA | rank {lora.get('rank', '?')}, alpha {lora.get('alpha', '?')} |",
             f"| Max sequence length | {config.get('max_seq_length', '?')} tokens |", ""]
    if config.get("labels"):
        lines += [f"Labels: {', '.join(config['labels'])}.", ""]
    lines += ["## Prompt template", "",
              "The model was taught with this template, `{input_text}` standing for the text:", "",
              "```", config.get("template", "{input_text}"), "```", ""]
    if fmt != "adapter":
        lines += ["The chat template in this export wraps every user message in that template, so a chat "
                  "client asks the model the way it was taught: send just the text as the user's message.", ""]
    scores = latest_scores(workspace, run_dir.name)
    if scores:
        lines += ["## Evaluation", "", f"On {scores['rows']} rows of `{scores['data']}`:", "",
                  "| Metric | Base | Tuned |", "|---|---|---|"]
        lines += [f"| {k} | {_fmt(b)} | {_fmt(t)} |" for k, (b, t) in scores["metrics"].items()]
        lines += [""]
    if verification:
        lines += ["## Verification", "",
                  f"{verification['runtime']} answered {verification['prompts']} eval prompts greedily: "
                  f"{verification['identical']} of {verification['prompts']} answers identical to the studio's "
                  "own for the run.", ""]
    lines += ["## Files", ""] + [f"- `{f}`" for f in files] + ["", "## How to load it", "", how_to_load, ""]
    return "\n".join(lines)
