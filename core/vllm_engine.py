"""Batch generation on vLLM, when it is installed (the `vllm` extra) and a CUDA GPU is there.

core.generate.generate_texts hands a batch here when `engine_for` says vLLM can answer it: a model loaded
for inference (evaluation, candidate pairs, a distillation teacher pass: no weight that trains) on CUDA,
a base model or a PeftModel with its LoRA adapter on or off, greedy or sampled, without constrained
decoding (label sets keep the transformers path, where the allowed tokens are enforced step by step).
Everything else — no vLLM, no CUDA, a model being trained, a few prompts only — stays on transformers
with no change in results.

The same prompts go in as the same token ids (the tokenizer is the transformers one), greedy decoding
picks the same tokens up to kernel rounding, stop sequences cut the text the same way, and the answers
are stripped alike. One engine per base model and dtype lives for the process (a job), serving the
base and any adapter (as a LoRARequest) alike; STUDIO_VLLM=0 turns it off, STUDIO_VLLM_MEMORY sets the
share of GPU memory it may take (the transformers model stays loaded beside it)."""
from __future__ import annotations

import importlib.util
import itertools
import os
import tempfile
import time
import weakref
from pathlib import Path
from typing import Callable

from core.config import GenerationConfig

# Below this many prompts, starting an engine (tens of seconds) costs more than it saves.
MIN_PROMPTS = int(os.environ.get("STUDIO_VLLM_MIN_PROMPTS", "32"))
# Prompts per call into the engine: progress is reported (and a cancel honoured) between chunks.
CHUNK = 256
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the ranks vLLM's LoRA kernels are built for

_engines: dict[tuple[str, str], object] = {}
_lora_ids = itertools.count(1)  # vLLM tells adapters apart by a positive int
_adapters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (folder, LoRA id)


def installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def available() -> bool:
    """vLLM is installed, not turned off, and a CUDA GPU is there."""
    if os.environ.get("STUDIO_VLLM", "1") == "0" or not installed():
        return False
    import torch

    return torch.cuda.is_available()


def _peft_layers(model) -> list:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [m for m in model.modules() if isinstance(m, BaseTunerLayer)]


def adapter_active(model) -> bool:
    """A PeftModel whose adapter is on (outside a `disable_adapter()` block)."""
    if not hasattr(model, "peft_config"):
        return False
    return any(not layer.disable_adapters for layer in _peft_layers(model))


def in_training(model) -> bool:
    """An adapter being tuned (its answers at eval points, core.monitor) keeps the transformers path: its
    LoRA weights still learn. A model loaded for answering (core.models.load_model) has them frozen."""
    return any(p.requires_grad for name, p in model.named_parameters() if "lora_" in name)


def base_location(model) -> str:
    """The folder (or hub id) the base weights were loaded from."""
    if hasattr(model, "peft_config"):
        return model.peft_config[model.active_adapter].base_model_name_or_path
    return model.config._name_or_path


def engine_for(model, prompts: int, only=None):
    """The vLLM engine that can answer for `model`, or None when this batch stays on transformers."""
    if only or prompts < MIN_PROMPTS or not available():
        return None
    try:
        on_cuda = next(model.parameters()).device.type == "cuda"
    except StopIteration:
        return None
    if not on_cuda or in_training(model):
        return None
    return engine(base_location(model), str(model.dtype).removeprefix("torch."), _max_lora_rank(model))


def _max_lora_rank(model) -> int:
    if not hasattr(model, "peft_config"):
        return 8
    rank = max(getattr(c, "r", 8) for c in model.peft_config.values())
    return next((r for r in LORA_RANKS if r >= rank), LORA_RANKS[-1])


def engine(location: str, dtype: str, max_lora_rank: int = 8):
    """One vllm.LLM per base model and dtype in this process, with LoRA on so adapters need no reload."""
    key = (location, dtype)
    if key not in _engines:
        from vllm import LLM

        _engines[key] = LLM(model=location, dtype=dtype, enable_lora=True, max_lora_rank=max_lora_rank,
                            gpu_memory_utilization=float(os.environ.get("STUDIO_VLLM_MEMORY", "0.5")),
                            trust_remote_code=False, seed=0)
    return _engines[key]


def lora_request(model):
    """The model's active adapter as a vLLM LoRARequest (saved once to a temporary folder), or None."""
    if not adapter_active(model):
        return None
    from vllm.lora.request import LoRARequest

    if model not in _adapters:
        folder = tempfile.mkdtemp(prefix="studio-vllm-adapter-")
        model.save_pretrained(folder)
        _adapters[model] = (folder, next(_lora_ids))
    folder, number = _adapters[model]
    return LoRARequest(f"adapter-{number}", number, str(Path(folder) / _adapter_subfolder(model, folder)))


def _adapter_subfolder(model, folder: str) -> str:
    """save_pretrained writes a non-default adapter into a subfolder of its name."""
    name = model.active_adapter
    return "" if name == "default" or not (Path(folder) / name).is_dir() else name


def sampling_params(cfg: GenerationConfig):
    from vllm import SamplingParams

    common = dict(max_tokens=cfg.max_output_tokens, stop=list(cfg.stop_sequences) or None, skip_special_tokens=True)
    if cfg.temperature > 0:
        return SamplingParams(temperature=cfg.temperature, top_k=cfg.top_k or -1, top_p=cfg.top_p, seed=cfg.seed,
                              **common)
    return SamplingParams(temperature=0.0, **common)


def generate(llm, model, tokenizer, prompts: list[str], cfg: GenerationConfig,
             progress: Callable[[int, int], None] | None = None, stats: dict | None = None) -> list[str]:
    """Answers for `prompts`, in order, from the vLLM engine: the same token ids as the transformers path,
    the same stop handling and stripping (core.generate.cut_at_stop)."""
    from core.generate import cut_at_stop

    params, lora = sampling_params(cfg), lora_request(model)
    answers: list[str] = []
    new_tokens, t0 = 0, time.perf_counter()
    for i in range(0, len(prompts), CHUNK):
        chunk = [{"prompt_token_ids": tokenizer(p).input_ids} for p in prompts[i:i + CHUNK]]
        for out in llm.generate(chunk, params, lora_request=lora, use_tqdm=False):
            completion = out.outputs[0]
            new_tokens += len(completion.token_ids)
            answers.append(cut_at_stop(completion.text, cfg.stop_sequences).strip())
        if progress:
            progress(len(answers), len(prompts))
    seconds = time.perf_counter() - t0
    if stats is not None:
        stats.update(new_tokens=new_tokens, seconds=seconds, engine="vllm")
    print(f"vLLM answered {len(prompts)} prompts: {new_tokens} new tokens in {seconds:.1f} s "
          f"({new_tokens / max(seconds, 1e-9):.0f} tokens/s)", flush=True)
    return answers
