"""Scores of the compare grid, base vs tuned, where a CLIP model is on this machine: **subject fidelity**
(CLIP image–image cosine similarity of each generated image to the training images, averaged) and
**prompt alignment** (CLIP text–image cosine similarity of each image to its prompt). Nothing is
downloaded: "auto" uses a CLIP folder under the workspace's models/ or in the Hugging Face cache, and
without one the compare says so instead of scoring."""
from __future__ import annotations

import json
from pathlib import Path

from core.images.models import hf_cache_dir

NO_SCORER = ("no CLIP model on this machine, so no scores: put one (e.g. openai/clip-vit-base-patch32, saved "
             "with save_pretrained) under the workspace's models/ folder, or name its folder as the scoring model")


def _is_clip(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("model_type") == "clip" and any(folder.glob("*.safetensors"))


def find_scorer(choice: str, workspace=None) -> str | None:
    """The CLIP folder to score with: the named folder, or with "auto" the first one found; None for "none"."""
    if choice == "none":
        return None
    if choice != "auto":
        return choice if _is_clip(Path(choice)) else None
    candidates = sorted((Path(workspace) / "models").glob("*")) if workspace else []
    cache = hf_cache_dir()
    for repo in sorted(cache.glob("models--*clip*")) if cache.is_dir() else []:
        candidates += sorted((repo / "snapshots").glob("*"))
    return next((str(c) for c in candidates if _is_clip(c)), None)


def _unit(x):
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-8)


def _features(output):
    """get_*_features returns a tensor in older transformers and an output with pooler_output in newer."""
    return output if hasattr(output, "norm") else output.pooler_output


def score_compare(folder: Path, rows: list[dict], training_images, choice: str = "auto", workspace=None) -> dict:
    """{"available", "model", "note", "base": {fidelity, alignment}, "tuned": {…}, "rows": [per row]}."""
    location = find_scorer(choice, workspace)
    if not location:
        return {"available": False, "note": NO_SCORER if choice in ("auto", "none") else
                f"`{choice}` is not a CLIP model folder (config.json with model_type clip, safetensors weights)"}
    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(location, use_safetensors=True).eval()
    processor = CLIPProcessor.from_pretrained(location)

    def images(paths):
        opened = [Image.open(p).convert("RGB") for p in paths]
        with torch.no_grad():
            return _unit(_features(model.get_image_features(**processor(images=opened, return_tensors="pt"))))

    with torch.no_grad():
        texts = _unit(_features(model.get_text_features(**processor(
            text=[r["prompt"] for r in rows], return_tensors="pt", padding=True, truncation=True))))
    reference = images(list(training_images)) if training_images else None
    out = {"available": True, "model": location, "rows": [{} for _ in rows]}
    for side in ("base", "tuned"):
        generated = images([folder / r[side] for r in rows])
        alignment = (generated * texts).sum(-1)
        fidelity = (generated @ reference.T).mean(-1) if reference is not None else None
        for i, per_row in enumerate(out["rows"]):
            per_row[side] = {"alignment": round(float(alignment[i]), 4),
                             "fidelity": None if fidelity is None else round(float(fidelity[i]), 4)}
        out[side] = {"alignment": round(float(alignment.mean()), 4),
                     "fidelity": None if fidelity is None else round(float(fidelity.mean()), 4)}
    return out
