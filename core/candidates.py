"""Two candidate answers per prompt, from two models/runs or two sampling settings, into a labeling
queue: the third source of preference pairs (besides the playground and the regression browser).
Runs as a job of kind `candidates` (core.worker)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from core import preferences, runs
from core.config import BUNDLED_MODEL, CandidatesConfig, GenerationConfig
from core.data import load_dataset
from core.generate import generate_texts
from core.models import load_model
from core.names import ADAPTER_DIR, CONFIG_FILE
from core.templates import render_prompt, template_for


def _side(workspace: Path, side: dict, device: str):
    """(model, tokenizer, template, label) for one side: a tuned run (its template) or a model."""
    temperature, seed = side.get("temperature", 0.0), side.get("seed", 0)
    if side.get("run"):
        run_dir = runs.run_path(workspace, side["run"])
        config = runs.read_json(run_dir / CONFIG_FILE, {}) or {}
        lm, tok, _ = load_model(config.get("model") or BUNDLED_MODEL, workspace, device, adapter=run_dir / ADAPTER_DIR)
        template, label = template_for(config), f"run {side['run']}"
    else:
        model = side.get("model") or BUNDLED_MODEL
        lm, tok, _ = load_model(model, workspace, device)
        template, label = template_for(None), model
    return lm, tok, template, f"{label} (temperature {temperature:g}, seed {seed})"


def generate_candidates(workspace: str | Path, cfg: CandidatesConfig,
                        progress: Callable[[int, int], None] | None = None) -> int:
    """Answer every prompt from both sides and add the pairs that differ to cfg.queue. Returns pairs added."""
    workspace = Path(workspace)
    preferences.check_queue_name(cfg.queue)
    prompts = [e["input_text"] for e in load_dataset(cfg.prompts, require_output=False).examples][:cfg.limit]
    answers, sources = [], []
    for n, side in enumerate((cfg.a, cfg.b)):
        lm, tok, template, label = _side(workspace, side, cfg.device)
        gen = GenerationConfig(max_output_tokens=cfg.max_output_tokens, temperature=side.get("temperature", 0.0),
                               seed=side.get("seed", 0))
        rendered = [render_prompt(tok, template, p) for p in prompts]
        answers.append(generate_texts(lm, tok, rendered, gen, keep_going=True,
                                      progress=(lambda d, t, n=n: progress(n * t + d, 2 * t)) if progress else None))
        sources.append(label)
    pairs = [{"prompt": p, "answer_a": x, "answer_b": y, "source_a": sources[0], "source_b": sources[1]}
             for p, x, y in zip(prompts, *answers) if x and y and x != y]
    preferences.add_pairs(workspace, cfg.queue, pairs)
    return len(pairs)
