"""Loading a text-to-image pipeline and generating with it: one image from a prompt and a seed, the same
prompts and seeds through the base and the tuned pipeline (the compare grid, with its scores where a CLIP
model is found), written as PNGs and compare.json. Torch and diffusers load when these functions run."""
from __future__ import annotations

import time
from pathlib import Path

from core import runs
from core.images.models import LORA_FILE, resolve_image_model

COMPARE_DIR = "compare"
COMPARE_FILE = "compare.json"
GRID_FILE = "grid.png"
LABEL_HEIGHT = 18


def load_pipeline(name: str, workspace=None, device: str = "cpu", dtype=None, lora: str | Path | None = None):
    """The pipeline from a folder or hub id (safetensors only, no remote code), on `device`, progress
    bars off; with `lora`, its weights loaded the standard way (pipe.load_lora_weights)."""
    import torch
    from diffusers import DiffusionPipeline

    location = resolve_image_model(name, workspace)
    pipe = DiffusionPipeline.from_pretrained(location, use_safetensors=True, torch_dtype=dtype or torch.float32)
    pipe.set_progress_bar_config(disable=True)
    if getattr(pipe, "safety_checker", None) is not None:
        pipe.safety_checker = None  # its CLIP pass doubles the cost of a small image; the user judges the images
    if lora:
        pipe.load_lora_weights(str(lora), weight_name=LORA_FILE)
    return pipe.to(device)


def generate(pipe, prompt: str, seed: int, resolution: int, steps: int, guidance: float):
    """One PIL image. The generator lives on the CPU so a seed gives the same noise on every device."""
    import torch

    generator = torch.Generator("cpu").manual_seed(int(seed))
    return pipe(prompt, height=resolution, width=resolution, num_inference_steps=steps, guidance_scale=guidance,
                generator=generator).images[0]


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow before 10.1 has one bitmap size
        return ImageFont.load_default()


def grid_image(rows: list[dict], folder: Path, cell: int = 256):
    """Rows of (base, tuned) images, each row labelled with its prompt and seed: what people compare."""
    from PIL import Image, ImageDraw

    pad, head = 6, 22
    width = 2 * cell + 3 * pad
    height = head + len(rows) * (cell + LABEL_HEIGHT + pad) + pad
    grid = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(grid)
    font = _font(13)
    for col, title in enumerate(("base", "tuned")):
        draw.text((pad + col * (cell + pad) + cell // 2 - 15, 4), title, fill="black", font=font)
    y = head
    for row in rows:
        label = f"{row['prompt']}  (seed {row['seed']})"
        draw.text((pad, y), label if len(label) <= 70 else label[:69] + "…", fill=(60, 60, 60), font=font)
        y += LABEL_HEIGHT
        for col, side in enumerate(("base", "tuned")):
            with Image.open(folder / row[side]) as im:
                grid.paste(im.convert("RGB").resize((cell, cell), Image.Resampling.NEAREST if im.width < 128
                                                    else Image.Resampling.LANCZOS), (pad + col * (cell + pad), y))
        y += cell + pad
    return grid


def compare(pipe, prompts: list[str], seeds: list[int], folder: str | Path, *, resolution: int, steps: int,
            guidance: float, set_tuned, training_images: list[Path] = (), scoring_model: str = "auto",
            workspace=None, progress=None) -> dict:
    """The same prompts and seeds through base and tuned: `set_tuned(pipe, on)` switches the LoRA on or off
    (an adapter enabled in memory, or loaded from its folder). Writes base-/tuned- PNGs, grid.png and
    compare.json into `folder`; returns compare.json's content."""
    from core.images import scores

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"prompt": p, "seed": s, "base": f"base-{i:02d}-{s}.png", "tuned": f"tuned-{i:02d}-{s}.png"}
            for i, p in enumerate(prompts) for s in seeds]
    total, done, seconds = 2 * len(rows), 0, {}
    for side in ("base", "tuned"):
        set_tuned(pipe, side == "tuned")
        started = time.time()
        for row in rows:
            generate(pipe, row["prompt"], row["seed"], resolution, steps, guidance).save(folder / row[side])
            done += 1
            if progress:
                progress(done, total)
        seconds[side] = round((time.time() - started) / len(rows), 2)
    set_tuned(pipe, True)
    grid_image(rows, folder).save(folder / GRID_FILE)
    result = {"prompts": list(prompts), "seeds": list(seeds), "rows": rows, "resolution": resolution,
              "inference_steps": steps, "guidance_scale": guidance, "seconds_per_image": seconds,
              "created": runs.now_iso()}
    result["scores"] = scores.score_compare(folder, rows, training_images, scoring_model, workspace)
    runs.write_json(folder / COMPARE_FILE, result)
    return result


def read_compare(folder: str | Path) -> dict | None:
    """compare.json of a compare folder, its images present; None when there is none (yet)."""
    folder = Path(folder)
    result = runs.read_json(folder / COMPARE_FILE, None)
    if not isinstance(result, dict) or not (folder / GRID_FILE).is_file():
        return None
    return result


def set_loaded_lora(pipe, on: bool) -> None:
    """Switch LoRA weights loaded with load_lora_weights on or off (base = the same pipeline without them)."""
    pipe.enable_lora() if on else pipe.disable_lora()


def compare_job(workspace, job_dir: str | Path, prompts: list[str] | None = None, seeds: list[int] | None = None,
                device: str = "auto", progress=None) -> tuple[Path, dict]:
    """A finished job's base vs tuned again, with other prompts or seeds: its base pipeline with its saved
    LoRA loaded the standard way, into <job>/compares/<id>/. Returns (folder, compare.json)."""
    from core import jobs
    from core.images.config import ImageTuneConfig
    from core.images.files import usable_images
    from core.images.models import LORA_DIR
    from core.models import pick_device

    job_dir = Path(job_dir)
    cfg = ImageTuneConfig.from_dict(jobs.read_job(job_dir).get("config") or {})
    lora = job_dir / LORA_DIR
    if not (lora / LORA_FILE).is_file():
        raise FileNotFoundError(f"job {job_dir.name} has no LoRA weights yet ({LORA_DIR}/{LORA_FILE}); "
                                "compare a finished job")
    pipe = load_pipeline(cfg.model, workspace, pick_device(device), lora=lora)
    try:
        training = usable_images(cfg.images, cfg.resolution)
    except (ValueError, OSError):
        training = []  # the training images were moved: no fidelity score, the grid still comes
    folder = job_dir / "compares" / runs.new_job_id("compare")
    result = compare(pipe, prompts or cfg.compare_prompts, seeds or cfg.compare_seeds, folder,
                     resolution=cfg.resolution, steps=cfg.inference_steps, guidance=cfg.guidance_scale,
                     set_tuned=set_loaded_lora, training_images=training, scoring_model=cfg.scoring_model,
                     workspace=workspace, progress=progress)
    return folder, result
