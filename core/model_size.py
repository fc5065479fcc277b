"""How big a model is, read from its config.json alone (no weights, no torch), for the defaults that
depend on size (the learning rate). None when the size cannot be known without a download."""
from __future__ import annotations

import json
from pathlib import Path

from core import runs
from core.config import BUNDLED_MODEL
from core.models import RUN_MODEL_PREFIX
from core.names import CONFIG_FILE

# SmolLM2-135M-Instruct: hidden 576, 30 layers, 9 query / 3 key-value heads, MLP 1536, tied 49,152 words.
BUNDLED_PARAMETERS = 134_515_008


def parameters_from_config(config: dict) -> int | None:
    """Parameters of a decoder-only transformer from its config: attention (with grouped key/value
    heads), a gated MLP, the norms and the embeddings (counted twice unless tied). None for unknown
    shapes."""
    text = config.get("text_config") or config
    hidden, layers, vocab = (text.get(k) for k in ("hidden_size", "num_hidden_layers", "vocab_size"))
    if not (isinstance(hidden, int) and isinstance(layers, int) and isinstance(vocab, int)):
        return None
    heads = text.get("num_attention_heads") or 1
    kv_heads = text.get("num_key_value_heads") or heads
    head_dim = text.get("head_dim") or hidden // heads
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
    mlp = 3 * hidden * (text.get("intermediate_size") or 4 * hidden)
    tied = text.get("tie_word_embeddings", config.get("tie_word_embeddings", True))
    norms = (2 * layers + 1) * hidden
    return layers * (attention + mlp) + norms + vocab * hidden * (1 if tied else 2)


def _config_of(model: str) -> dict | None:
    path = Path(model).expanduser()
    if (path / "config.json").is_file():
        return json.loads((path / "config.json").read_text())
    try:  # a hub id already in the local cache; never a download
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "config.json")
    except Exception:  # noqa: BLE001 - not a valid repo id, no cache: the size is unknown
        return None
    return json.loads(Path(cached).read_text()) if isinstance(cached, str) else None


def parameter_estimate(model: str | None, workspace: str | Path) -> int | None:
    """Parameters of a model as the studio names it: the bundled one, `run:RUN_ID` (its base model), a
    local folder or a cached hub id."""
    model = (model or BUNDLED_MODEL).strip()
    if model == BUNDLED_MODEL:
        return BUNDLED_PARAMETERS
    if model.startswith(RUN_MODEL_PREFIX):
        try:
            run_config = runs.read_json(runs.run_path(workspace, model[len(RUN_MODEL_PREFIX):]) / CONFIG_FILE)
        except (OSError, ValueError):
            return None
        base = run_config.get("model") if isinstance(run_config, dict) else None
        return parameter_estimate(base, workspace) if base and not base.startswith(RUN_MODEL_PREFIX) else None
    try:
        config = _config_of(model)
    except (OSError, ValueError):
        return None
    return parameters_from_config(config) if isinstance(config, dict) else None
