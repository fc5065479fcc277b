"""Two candidate answers per prompt, from two models/runs or two sampling settings, into a labeling
queue: the third source of preference pairs (besides the playground and the regression browser)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from core import preferences, runs
from core.config import BUNDLED_MODEL, GenerationConfig, TuneConfig
from core.data import load_dataset


def _side(workspace: Path, run: str | None, model: str | None, temperature: float, seed: int):
    """(model, tokenizer, template, label) for one side."""
    from core.models import load_model

    if run:
        run_dir = runs.run_path(workspace, run)
        cfg = TuneConfig.from_dict(runs.read_json(run_dir / "config.json"))
        lm, tok, _ = load_model(cfg.model, workspace, adapter=run_dir / "adapter")
        template, label = cfg.template, f"run {run}"
    else:
        lm, tok, _ = load_model(model or BUNDLED_MODEL, workspace)
        template, label = "{input_text}", model or BUNDLED_MODEL
    return lm, tok, template, f"{label} (temperature {temperature:g}, seed {seed})"


def generate_candidates(workspace: str | Path, prompts_file: str | Path, queue: str, a: dict, b: dict,
                        limit: int | None = None, max_output_tokens: int = 128,
                        progress: Callable[[int, int], None] | None = None) -> int:
    """a, b: {"run": id|None, "model": name|None, "temperature": float, "seed": int}. Returns pairs added."""
    from core.generate import generate_texts
    from core.templates import render_prompt

    workspace = Path(workspace)
    prompts = [e["input_text"] for e in load_dataset(prompts_file, require_output=False).examples][:limit]
    answers, sources = [], []
    for n, side in enumerate((a, b)):
        lm, tok, template, label = _side(workspace, side.get("run"), side.get("model"),
                                         side.get("temperature", 0.0), side.get("seed", 0))
        cfg = GenerationConfig(max_output_tokens=max_output_tokens, temperature=side.get("temperature", 0.0),
                               seed=side.get("seed", 0))
        rendered = [render_prompt(tok, template, p) for p in prompts]
        answers.append(generate_texts(lm, tok, rendered, cfg, keep_going=True,
                                      progress=(lambda d, t, n=n: progress(n * t + d, 2 * t)) if progress else None))
        sources.append(label)
    pairs = [{"prompt": p, "answer_a": x, "answer_b": y, "source_a": sources[0], "source_b": sources[1]}
             for p, x, y in zip(prompts, *answers) if x and y and x != y]
    preferences.add_pairs(workspace, queue, pairs)
    return len(pairs)
