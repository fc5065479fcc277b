"""Which text-to-image pipelines this machine has, without loading one: diffusers pipeline folders (a
model_index.json) under the workspace's models/ folder and in the Hugging Face cache, and what a name
given by the user points to. No torch here: the page imports this."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from core.names import IMAGES_DIR, check_name

# Pipeline classes whose training this project knows (their UNet, text encoders and added conditions).
SD_CLASSES = ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline")
SDXL_CLASSES = ("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline")
LORA_DIR = "lora"                   # in a job folder: pytorch_lora_weights.safetensors (pipe.load_lora_weights)
LORA_FILE = "pytorch_lora_weights.safetensors"
IMAGE_JOB_PREFIX = "image:"         # `--lora image:<job id>` names a tuned job's LoRA
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+")


class ImageModelError(ValueError):
    """A base model name that cannot be used; the message says what to do."""


def pipeline_class(folder: str | Path) -> str | None:
    """The `_class_name` of a diffusers pipeline folder, or None when it is not one."""
    try:
        index = json.loads((Path(folder) / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return index.get("_class_name") if isinstance(index, dict) else None


def is_supported(class_name: str | None) -> bool:
    return class_name in SD_CLASSES + SDXL_CLASSES


def hf_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"


def find_pipelines(workspace: str | Path) -> list[dict]:
    """Local pipelines: {"name" (what to type), "location", "class_name", "source", "supported"}. The
    workspace's models/<name>/ folders first, then the newest snapshot of each cached hub pipeline."""
    found = []
    models = Path(workspace) / "models"
    for folder in sorted(models.iterdir()) if models.is_dir() else []:
        class_name = pipeline_class(folder)
        if class_name:
            found.append({"name": str(folder.resolve()), "location": str(folder.resolve()), "class_name": class_name,
                          "source": "workspace", "supported": is_supported(class_name)})
    cache = hf_cache_dir()
    for repo in sorted(cache.glob("models--*--*")) if cache.is_dir() else []:
        snapshots = sorted((repo / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime, reverse=True)
        snap = next((s for s in snapshots if pipeline_class(s)), None)
        if snap:
            class_name = pipeline_class(snap)
            hub_id = repo.name.removeprefix("models--").replace("--", "/", 1)
            found.append({"name": hub_id, "location": str(snap), "class_name": class_name, "source": "Hugging Face cache",
                          "supported": is_supported(class_name)})
    return found


def resolve_image_model(name: str, workspace: str | Path | None = None) -> str:
    """A local pipeline folder, or a hub id that diffusers fetches (or finds in its cache). Raises
    ImageModelError with what to do next."""
    name = (name or "").strip()
    if not name:
        raise ImageModelError("no base model given: name a diffusers pipeline folder or a hub id "
                              "(e.g. stable-diffusion-v1-5/stable-diffusion-v1-5)")
    path = Path(name).expanduser()
    if path.is_dir():
        class_name = pipeline_class(path)
        if not class_name:
            raise ImageModelError(f"`{name}` is a folder but not a diffusers pipeline (no model_index.json); "
                                  "save one with pipe.save_pretrained(folder)")
        if not is_supported(class_name):
            raise ImageModelError(f"`{name}` is a {class_name}; tuning here supports Stable Diffusion 1.x/2.x "
                                  "(StableDiffusionPipeline) and SDXL (StableDiffusionXLPipeline)")
        return str(path.resolve())
    if path.is_absolute() or name.startswith((".", "~")):
        raise ImageModelError(f"the folder `{name}` does not exist")
    if not _HUB_ID.fullmatch(name):
        raise ImageModelError(f"`{name}` is neither a pipeline folder nor a hub id (owner/name)")
    for item in find_pipelines(workspace or ".") if workspace else []:
        if item["name"] == name:
            if not item["supported"]:
                raise ImageModelError(f"`{name}` is a {item['class_name']}, not a Stable Diffusion or SDXL pipeline")
            return item["location"]
    return name  # fetched by diffusers on first use (needs the network once)


def is_sdxl(location: str) -> bool:
    return pipeline_class(location) in SDXL_CLASSES if Path(location).is_dir() else "xl" in location.lower()


def tuned_lora(workspace: str | Path, name: str) -> Path:
    """`image:<job id>` or a folder holding pytorch_lora_weights.safetensors -> that folder."""
    if name.startswith(IMAGE_JOB_PREFIX):
        job_id = check_name(name[len(IMAGE_JOB_PREFIX):], "image job id", max_len=100)
        folder = Path(workspace) / IMAGES_DIR / job_id / LORA_DIR
    else:
        folder = Path(name).expanduser()
    if not (folder / LORA_FILE).is_file():
        raise ImageModelError(f"no LoRA weights at `{folder}` ({LORA_FILE}); name a finished image job as "
                              f"{IMAGE_JOB_PREFIX}<job id> or the folder that holds the file")
    return folder
