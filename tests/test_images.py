"""Image tuning on a tiny Stable-Diffusion-class pipeline built from configs (random UNet, VAE and CLIP text
encoder, the project's own character tokenizer): the image check, the config, a LoRA job on the job road
that moves only the adapter, its weights loaded back with pipe.load_lora_weights, the compare grid and its
CLIP scores, speed trials and their projection, and the CLI. Nothing is downloaded."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from core import jobs, runs
from core.config import ConfigError
from core.data import DataError
from core.images import trial as image_trial
from core.images.config import ImageTuneConfig, compare_prompts_for
from core.images.files import check_folder, check_images, save_set
from core.images.models import LORA_DIR, LORA_FILE, ImageModelError, find_pipelines, resolve_image_model, tuned_lora

RES = 32


def picture(seed: int, size: int = 48, fmt: str = "PNG") -> bytes:
    """A deterministic picture: coloured blocks from `seed` (each seed looks different to the hashes)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    image = Image.fromarray(blocks).resize((size, size), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory) -> Path:
    from core.images.tiny import save_tiny_pipeline

    return save_tiny_pipeline(tmp_path_factory.mktemp("tiny-pipeline") / "tiny-sd")


@pytest.fixture
def image_set(tmp_path) -> Path:
    folder = tmp_path / "pitcher"
    folder.mkdir()
    for i in range(6):
        (folder / f"photo {i}.png").write_bytes(picture(i))
    return folder


def tiny_config(images: Path, model: Path, **settings) -> ImageTuneConfig:
    base = {"model": str(model), "max_iterations": 6, "learning_rate": 1e-2, "rank": 4, "resolution": RES,
            "sample_every": 3, "inference_steps": 2, "compare_seeds": [0], "scoring_model": "none", "device": "cpu",
            "class_word": "pitcher",
            "compare_prompts": ["a photo of sks pitcher on a beach", "a photo of sks pitcher on a wooden table"]}
    return ImageTuneConfig.from_trigger(str(images), "subject", "sks pitcher", **(base | settings))


# ---------------------------------------------------------------- no torch: checks, config, models

def test_check_flags_duplicates_small_and_unreadable():
    items = [(f"ok{i}.png", picture(i)) for i in range(5)]
    items += [("copy.png", picture(0)), ("tiny.png", picture(9, size=12)), ("broken.png", b"not an image"),
              ("resaved.jpg", picture(1, fmt="JPEG"))]
    report = check_images(items, RES)
    flags = {i["file"]: (i["problem"], i["warning"]) for i in report["images"]}
    assert report["usable"] and report["used"] == 6 and report["problems"] == 3
    assert flags["copy.png"][0] == "the same file as ok0.png"
    assert flags["tiny.png"][0].startswith("too small: 12×12")
    assert flags["broken.png"][0].startswith("not a readable image")
    assert flags["resaved.jpg"] == ("", "looks like a near-duplicate of ok1.png")  # re-encoded, same picture
    few = check_images(items[:4], RES)
    assert not few["usable"] and few["why_not"] == "4 usable images; tuning needs at least 5"
    assert check_images([(f"{i}.png", picture(i)) for i in range(31)], RES)["why_not"].startswith("31 usable images")


def test_uploads_get_names_made_here(tmp_path):
    folder = save_set(tmp_path, "pitcher", [("../../evil.png", picture(1)), ("x.txt", b"text"),
                                            ("b.jpeg", picture(2, fmt="JPEG"))])
    assert folder == tmp_path / "image_sets" / "pitcher"
    assert sorted(p.name for p in folder.iterdir()) == ["image-001.png", "image-002.jpg"]
    assert not (tmp_path.parent / "evil.png").exists()
    with pytest.raises(ValueError, match="not a valid name"):
        save_set(tmp_path, "../up", [("a.png", picture(1))])
    with pytest.raises(DataError, match="none of the uploaded files"):
        save_set(tmp_path, "empty", [("a.png", b"nope")])
    with pytest.raises(DataError, match="is not a folder"):
        check_folder(tmp_path / "missing", RES)


def test_config_builds_prompts_from_the_trigger_and_refuses_bad_settings(image_set):
    cfg = ImageTuneConfig.from_trigger(str(image_set), "subject", "sks pitcher", class_word="pitcher", model="m/x")
    assert cfg.instance_prompt == "a photo of sks pitcher" and cfg.class_prompt == "a photo of pitcher"
    assert cfg.compare_prompts[:2] == ["a photo of sks pitcher on a beach", "a photo of sks pitcher on a wooden table"]
    assert cfg.sample_prompt == cfg.compare_prompts[0]
    style = compare_prompts_for("style", "in golden photo style")
    assert style[0] == "a lighthouse on a beach in golden photo style"
    assert ImageTuneConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match="class word"):
        ImageTuneConfig.from_trigger(str(image_set), "subject", "sks pitcher", model="m/x")
    with pytest.raises(ConfigError, match="resolution must be a multiple of 8"):
        ImageTuneConfig.from_trigger(str(image_set), "style", "in gold style", model="m/x", resolution=100)
    with pytest.raises(ConfigError, match="trigger phrase is required"):
        ImageTuneConfig.from_trigger(str(image_set), "style", "  ", model="m/x")
    with pytest.raises(ConfigError, match="prior preservation is for subject"):
        ImageTuneConfig.from_trigger(str(image_set), "style", "in gold style", model="m/x", prior_preservation=True)


def test_models_found_and_named(tmp_path, tiny_pipeline, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert find_pipelines(tmp_path) == []
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny-sd").symlink_to(tiny_pipeline)
    found = find_pipelines(tmp_path)
    assert [(f["class_name"], f["supported"], f["source"]) for f in found] == [("StableDiffusionPipeline", True, "workspace")]
    assert resolve_image_model(str(tiny_pipeline)) == str(tiny_pipeline.resolve())
    assert resolve_image_model("stable-diffusion-v1-5/stable-diffusion-v1-5") == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    with pytest.raises(ImageModelError, match="not a diffusers pipeline"):
        resolve_image_model(str(tmp_path))
    with pytest.raises(ImageModelError, match="does not exist"):
        resolve_image_model("/no/such/folder")
    with pytest.raises(ImageModelError, match="no LoRA weights"):
        tuned_lora(tmp_path, "image:nothing-here")


# ---------------------------------------------------------------- tuning on the tiny pipeline

@pytest.fixture(scope="module")
def tuned_job(tmp_path_factory, tiny_pipeline):
    from core.worker import run_job

    root = tmp_path_factory.mktemp("tuned")
    images = root / "set"
    images.mkdir()
    for i in range(6):
        (images / f"{i}.png").write_bytes(picture(i))
    ws = root / "ws"
    job_dir = jobs.create_image_tune(ws, tiny_config(images, tiny_pipeline))
    pipe = run_job(job_dir)
    return job_dir, pipe


def test_tuning_moves_only_the_adapter(tuned_job, tiny_pipeline):
    from diffusers import UNet2DConditionModel

    job_dir, pipe = tuned_job
    status = runs.read_status(job_dir)
    assert status["state"] == "succeeded" and status["step"] == 6, status
    losses = [m["loss"] for m in runs.read_metrics(job_dir)]
    assert len(losses) == 6 and all(loss > 0 for loss in losses)
    samples = runs.read_jsonl(job_dir / "samples.jsonl")
    assert [s["step"] for s in samples] == [3, 6] and all((job_dir / s["image"]).is_file() for s in samples)
    base = UNet2DConditionModel.from_pretrained(tiny_pipeline, subfolder="unet").state_dict()
    tuned = pipe.unet.state_dict()
    lora_keys = [k for k in tuned if "lora_" in k]
    assert lora_keys and all(any(t in k for t in ("to_q", "to_k", "to_v", "to_out.0")) for k in lora_keys)
    frozen = {k.replace(".base_layer", ""): v for k, v in tuned.items() if "lora_" not in k}
    assert set(frozen) == set(base) and all((frozen[k] == base[k]).all() for k in base)  # nothing else moved
    assert any(tuned[k].abs().sum() > 0 for k in lora_keys if "lora_B" in k)  # B starts at zero: it learned


def test_lora_weights_load_outside_the_studio(tuned_job, tiny_pipeline):
    import numpy as np
    import torch
    from diffusers import StableDiffusionPipeline
    from PIL import Image

    job_dir, _ = tuned_job
    assert (job_dir / LORA_DIR / LORA_FILE).is_file()
    pipe = StableDiffusionPipeline.from_pretrained(tiny_pipeline, use_safetensors=True)
    pipe.load_lora_weights(str(job_dir / LORA_DIR))  # the standard call, default file name
    compare = json.loads((job_dir / "compare" / "compare.json").read_text())
    row = compare["rows"][0]
    image = pipe(row["prompt"], height=RES, width=RES, num_inference_steps=2, guidance_scale=7.5,
                 generator=torch.Generator("cpu").manual_seed(row["seed"])).images[0]
    ours = np.asarray(Image.open(job_dir / "compare" / row["tuned"]), dtype=np.int16)
    assert np.abs(np.asarray(image, dtype=np.int16) - ours).max() <= 1  # the same picture as the job made
    base = np.asarray(Image.open(job_dir / "compare" / row["base"]), dtype=np.int16)
    assert np.abs(base - ours).max() > 1  # and the tuned pipeline draws something else than the base


def test_compare_grid(tuned_job):
    from PIL import Image

    job_dir, _ = tuned_job
    compare = json.loads((job_dir / "compare" / "compare.json").read_text())
    assert [r["prompt"] for r in compare["rows"]] == ["a photo of sks pitcher on a beach",
                                                      "a photo of sks pitcher on a wooden table"]
    assert all((job_dir / "compare" / r[side]).is_file() for r in compare["rows"] for side in ("base", "tuned"))
    with Image.open(job_dir / "compare" / "grid.png") as grid:
        assert grid.width > 2 * 256 and grid.height > 2 * 256  # two rows of base | tuned
    assert compare["scores"] == {"available": False, "note": compare["scores"]["note"]}
    assert "no CLIP model on this machine" in compare["scores"]["note"]


def test_prior_preservation_and_clip_scores(tmp_path, tiny_pipeline, image_set):
    from core.images.tiny import save_tiny_clip
    from core.worker import run_job

    clip = save_tiny_clip(tmp_path / "tiny-clip")
    cfg = tiny_config(image_set, tiny_pipeline, prior_preservation=True, prior_images=2, max_iterations=2,
                      sample_every=0, compare_prompts=["a photo of sks pitcher on a beach"], scoring_model=str(clip))
    job_dir = jobs.create_image_tune(tmp_path / "ws", cfg)
    run_job(job_dir)
    assert runs.read_status(job_dir)["state"] == "succeeded"
    assert sorted(p.name for p in (job_dir / "prior").iterdir()) == ["class-001.png", "class-002.png"]
    assert not (job_dir / "samples").exists()  # sample_every 0: none
    scores = json.loads((job_dir / "compare" / "compare.json").read_text())["scores"]
    assert scores["available"] and scores["model"] == str(clip)
    for side in ("base", "tuned"):
        assert -1 <= scores[side]["fidelity"] <= 1 and -1 <= scores[side]["alignment"] <= 1
    assert len(scores["rows"]) == 1 and set(scores["rows"][0]) == {"base", "tuned"}  # one prompt, one seed


def test_speed_trial_projects_the_run(tmp_path, tiny_pipeline, image_set):
    from core.worker import run_job

    ws = tmp_path / "ws"
    cfg = tiny_config(image_set, tiny_pipeline, max_iterations=1000, sample_every=100)
    assert image_trial.matching_trial(ws, cfg.to_dict()) is None
    folder = jobs.create_image_tune(ws, cfg, trial=True)
    assert folder.parent == ws / "images" / "trials" and jobs.list_jobs(ws, "image_tune") == []
    run_job(folder)
    status = runs.read_status(folder)
    assert status["state"] == "succeeded" and status["step"] == image_trial.TRIAL_STEPS
    assert not (folder / "lora").exists() and not (folder / "samples").exists()  # timings only
    found = image_trial.matching_trial(ws, cfg.to_dict())
    projection = found["projection"]
    assert found["dir"] == str(folder) and projection["seconds_per_step"] == status["seconds_per_step"] > 0
    expected = status["load_seconds"] + 1000 * status["seconds_per_step"] + (10 + 4) * status["seconds_per_image"]
    assert abs(projection["total_seconds"] - expected) <= 1  # 10 samples, 2 prompts × 1 seed × base and tuned
    other = tiny_config(image_set, tiny_pipeline, rank=8)
    assert image_trial.matching_trial(ws, other.to_dict()) is None  # another rank costs differently


def test_cli_check_models_compare_and_generate(tuned_job, tiny_pipeline, image_set, tmp_path, capsys, monkeypatch):
    from core.cli import main

    job_dir, _ = tuned_job
    ws = job_dir.parent.parent
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert main(["--workspace", str(ws), "images", "check", str(image_set), "--resolution", str(RES)]) == 0
    assert "usable: 6 of 6 images used at 32 px" in capsys.readouterr().out
    (image_set / "photo 5.png").write_bytes(b"broken")
    (image_set / "photo 4.png").unlink()
    assert main(["images", "check", str(image_set), "--resolution", str(RES)]) == 1
    out = capsys.readouterr().out
    assert "NOT USABLE: 4 usable images" in out and "LEFT OUT: not a readable image" in out
    assert main(["--workspace", str(ws), "images", "models"]) == 0
    assert "no image model on this machine" in capsys.readouterr().out

    assert main(["--workspace", str(ws), "images", "compare", "--job", job_dir.name, "--prompt",
                 "a photo of sks pitcher in a meadow", "--seed", "3", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    grid = Path(out.split("grid: ")[1].split()[0])
    assert grid.is_file() and grid.parent.parent == job_dir / "compares"
    assert "scores: no CLIP model on this machine" in out
    assert main(["--workspace", str(ws), "images", "compare", "--job", "nope"]) == 2

    out_dir = tmp_path / "gen"
    assert main(["--workspace", str(ws), "images", "generate", "a photo of sks pitcher", "--model", str(tiny_pipeline),
                 "--lora", f"image:{job_dir.name}", "--seed", "0", "--seed", "1", "--out", str(out_dir),
                 "--resolution", str(RES), "--inference-steps", "2", "--device", "cpu"]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["seed-0.png", "seed-1.png"]
    assert main(["--workspace", str(ws), "images", "generate", "x", "--model", str(tmp_path / "none"),
                 "--out", str(out_dir)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_trial_times_prior_preservation_without_drawing_the_prior(tmp_path, tiny_pipeline, image_set):
    from core.worker import run_job

    cfg = tiny_config(image_set, tiny_pipeline, prior_preservation=True, prior_images=50)
    folder = jobs.create_image_tune(tmp_path / "ws", cfg, trial=True)
    run_job(folder)
    assert runs.read_status(folder)["state"] == "succeeded" and not (folder / "prior").exists()
    projection = image_trial.matching_trial(tmp_path / "ws", cfg.to_dict())["projection"]
    assert projection["parts"]["prior images"] == round(50 * projection["seconds_per_image"])
