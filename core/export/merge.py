"""A run's adapter merged into its base model: one safetensors folder that plain
`AutoModelForCausalLM.from_pretrained` loads, with the tokenizer and a chat template that asks it the way
the run was taught (core.export.chat_template). Merging is peft's own merge_and_unload, in float32."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from core import runs
from core.export.chat_template import wrapped_chat_template
from core.models import ModelError, load_tokenizer, resolve_model
from core.names import ADAPTER_DIR, CHECKPOINT_PREFIX, CHECKPOINTS_DIR, CONFIG_FILE

# The files of an adapter folder an export carries (a checkpoint folder also holds optimizer state).
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json",
                   "vocab.json", "merges.txt", "tokenizer.model")


def adapter_source(run_dir: str | Path, checkpoint: int | None = None) -> Path:
    """The adapter to export: the run's own (its best or last step), or the checkpoint of step N."""
    run_dir = Path(run_dir)
    if checkpoint is None:
        path = run_dir / ADAPTER_DIR
        if not (path / "adapter_config.json").exists():
            state = runs.read_status(run_dir).get("state")
            raise ModelError(f"run {run_dir.name} has no adapter to export (state: {state}); export a "
                             "finished run, or one of its checkpoints")
        return path
    path = run_dir / CHECKPOINTS_DIR / f"{CHECKPOINT_PREFIX}{checkpoint}"
    if not runs.checkpoint_complete(path):
        have = [runs.checkpoint_step(p) for p in runs.checkpoints(run_dir) if runs.checkpoint_complete(p)]
        raise ModelError(f"run {run_dir.name} has no complete checkpoint at step {checkpoint}; it has "
                         + (", ".join(str(s) for s in have) if have else "none"))
    return path


def copy_adapter(source: Path, target: Path) -> list[str]:
    """The adapter's weights, config and tokenizer (no optimizer state) into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in ADAPTER_FILES + TOKENIZER_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, target / name)
            copied.append(name)
    return copied


def run_template(run_dir: str | Path) -> tuple[dict, str]:
    """(the run's config, the prompt template it was taught with)."""
    config = runs.read_json(Path(run_dir) / CONFIG_FILE, {}) or {}
    return config, config.get("template") or "{input_text}"


def merge_run(workspace: str | Path, run_dir: str | Path, adapter: Path, out_dir: Path,
              progress: Callable[[str], None] | None = None) -> dict:
    """Merge `adapter` into the run's base model and save the result, with the run's chat template, in
    `out_dir`. Returns the tensors' parameter count and the chat template written."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    config, template = run_template(run_dir)
    base = resolve_model(config.get("model", ""), workspace)
    say = progress or (lambda _phase: None)
    say("loading the base model")
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, use_safetensors=True,
                                                 trust_remote_code=False)
    say("merging the adapter")
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    say("saving the merged model")
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir, safe_serialization=True)
    tokenizer = load_tokenizer(str(adapter) if (adapter / "tokenizer_config.json").exists() else base)
    chat_template = wrapped_chat_template(getattr(tokenizer, "chat_template", None), template)
    tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(out_dir)
    return {"parameters": sum(p.numel() for p in merged.parameters()), "base": base,
            "chat_template": chat_template}
