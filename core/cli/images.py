"""`studio images`: LoRA tuning of a text-to-image pipeline. models (the pipelines on this machine), check (a
folder of training images: sizes, duplicates, too-small; exit 1 if unusable), tune (a job on the job road;
`--trial` times a few real steps first and projects the whole run), generate (images from a pipeline,
with a tuned LoRA or without), compare (a job's base vs tuned on the same prompts and seeds, as a grid with
scores where a CLIP model is found) and tiny-pipeline (a tiny random pipeline to try the road with)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from core import runs
from core.cli.common import fail, name_arg, nonblank, start_run, workspace
from core.config import ConfigError
from core.data import DataError
from core.images.config import MODES, ImageTuneConfig
from core.images.files import check_folder
from core.images.models import ImageModelError, find_pipelines
from core.names import DEVICES, FINAL_STATES, IMAGES_DIR

JOB_ID = name_arg("image job id", max_len=100)


def format_check(report: dict) -> str:
    verdict = "usable" if report["usable"] else f"NOT USABLE: {report['why_not']}"
    lines = [f"{verdict}: {report['used']} of {len(report['images'])} images used at {report['resolution']} px"]
    for i in report["images"]:
        note = i["problem"] and f"LEFT OUT: {i['problem']}" or i["warning"] and f"warning: {i['warning']}" or "ok"
        size = f"{i['width']}×{i['height']}" if i["width"] else "?"
        lines.append(f"  {i['file']:<32} {size:>11}  {note}")
    return "\n".join(lines)


def cmd_models(a) -> int:
    found = find_pipelines(workspace(a))
    if a.json:
        print(json.dumps(found))
    elif not found:
        print("no image model on this machine: put a diffusers pipeline folder under the workspace's models/ folder, "
              "or name a hub id (e.g. stable-diffusion-v1-5/stable-diffusion-v1-5; needs the network once); "
              "`studio images tiny-pipeline` makes a tiny random one to try the road with")
    for f in [] if a.json else found:
        print(f"{f['name']}  ({f['class_name']}, {f['source']}{'' if f['supported'] else ', not supported'})")
    return 0


def cmd_check(a) -> int:
    try:
        report = check_folder(a.folder, a.resolution)
    except DataError as e:
        return fail(str(e))
    print(json.dumps(report) if a.json else format_check(report))
    return 0 if report["usable"] else 1


def _config(a) -> ImageTuneConfig:
    settings = {"model": a.model, "class_word": a.class_word or "", "prior_preservation": a.prior_preservation,
                "max_iterations": a.steps, "learning_rate": a.learning_rate, "rank": a.rank,
                "resolution": a.resolution, "batch_size": a.batch_size, "sample_every": a.sample_every,
                "compare_prompts": a.prompt or [], "compare_seeds": a.seed or [0, 1],
                "inference_steps": a.inference_steps, "device": a.device, "scoring_model": a.scoring_model,
                "seed": a.train_seed, "name": a.name or ""}
    if a.prior_images:
        settings["prior_images"] = a.prior_images
    return ImageTuneConfig.from_trigger(str(Path(a.images).expanduser().resolve()), a.mode, a.trigger, **settings)


def cmd_tune(a) -> int:
    from core import jobs
    from core.images.trial import project

    ws = workspace(a)
    try:
        cfg = _config(a)
        report = check_folder(cfg.images, cfg.resolution)
        if not report["usable"]:
            return fail(f"the images cannot tune: {report['why_not']} (studio images check {cfg.images})")
        from core.images.models import resolve_image_model
        resolve_image_model(cfg.model, ws)
    except (ConfigError, DataError, ImageModelError) as e:
        return fail(str(e))
    job_dir = jobs.create_image_tune(ws, cfg, trial=a.trial)
    label = "speed trial" if a.trial else "image job"
    why = (f"{report['used']} images, {cfg.max_iterations} steps, rank {cfg.rank}, {cfg.resolution} px; "
           f"instance prompt “{cfg.instance_prompt}”")
    state = start_run(job_dir, why, wait=a.wait or a.trial, as_json=a.json, label=label,
                      stream=sys.stderr if a.json else sys.stdout)
    status = runs.read_status(job_dir)
    projection = project(cfg.to_dict(), status) if a.trial and state == "succeeded" else None
    if a.json:
        print(json.dumps({"job_id": job_dir.name, "job_dir": str(job_dir), "status": state, "projection": projection}))
    elif projection:
        parts = ", ".join(f"{k} {v} s" for k, v in projection["parts"].items())
        print(f"measured on {projection['device']}: {projection['seconds_per_step']} s per step, "
              f"{projection['seconds_per_image']} s per image\nthe whole run: about "
              f"{projection['total_seconds'] / 3600:.2f} h ({parts})")
    elif state == "succeeded":
        print(f"LoRA weights: {job_dir / 'lora'}  (pipe.load_lora_weights(folder), or --lora image:{job_dir.name})")
        print(f"compare grid: {job_dir / 'compare' / 'grid.png'}")
    return 0 if state not in FINAL_STATES or state == "succeeded" else 1


def cmd_generate(a) -> int:
    from core.images.generate import generate, load_pipeline
    from core.images.models import tuned_lora
    from core.models import pick_device

    ws = workspace(a)
    try:
        lora = tuned_lora(ws, a.lora) if a.lora else None
        pipe = load_pipeline(a.model, ws, pick_device(a.device), lora=lora)
    except (ImageModelError, ValueError, OSError) as e:
        return fail(str(e))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for seed in a.seed or [0]:
        path = out / f"seed-{seed}.png"
        generate(pipe, a.prompt, seed, a.resolution, a.inference_steps, a.guidance).save(path)
        print(path)
    return 0


def format_compare(result: dict) -> str:
    scores = result.get("scores") or {}
    if not scores.get("available"):
        return f"scores: {scores.get('note', 'none')}"
    lines = [f"scores ({Path(scores['model']).name}):  {'base':>8} {'tuned':>8}"]
    for key, title in (("fidelity", "subject fidelity"), ("alignment", "prompt alignment")):
        if scores["base"].get(key) is not None:
            lines.append(f"  {title:<26} {scores['base'][key]:>8.4f} {scores['tuned'][key]:>8.4f}")
    return "\n".join(lines)


def cmd_compare(a) -> int:
    from core.images.generate import compare_job

    job_dir = workspace(a) / IMAGES_DIR / a.job
    if not job_dir.is_dir():
        return fail(f"no image job `{a.job}` in {workspace(a) / IMAGES_DIR}")
    try:
        folder, result = compare_job(workspace(a), job_dir, a.prompt, a.seed, a.device)
    except (ImageModelError, ConfigError, OSError) as e:  # OSError: a pipeline that cannot be loaded
        return fail(str(e))
    print(json.dumps({"folder": str(folder), **result}) if a.json else f"grid: {folder / 'grid.png'}\n{format_compare(result)}")
    return 0


def cmd_tiny(a) -> int:
    from core.images.tiny import save_tiny_pipeline

    target = Path(a.folder)
    if target.exists() and any(target.iterdir()):
        return fail(f"{target} is not empty; name a new folder")
    print(save_tiny_pipeline(target))
    return 0


def add_parsers(sub, common) -> None:
    p = sub.add_parser("images", parents=[common], help="image-model LoRA tuning: models, check, tune, generate, compare")
    isub = p.add_subparsers(dest="images_command", required=True)
    m = isub.add_parser("models", parents=[common], help="the diffusers pipelines found on this machine")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)

    c = isub.add_parser("check", parents=[common], help="check a folder of training images; exit 1 if unusable")
    c.add_argument("folder")
    c.add_argument("--resolution", type=int, default=ImageTuneConfig.resolution)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_check)

    t = isub.add_parser("tune", parents=[common], help="LoRA-tune a pipeline on 5–30 images, as a job")
    t.add_argument("--images", required=True, help="folder of 5–30 training images")
    t.add_argument("--mode", choices=MODES, default="subject")
    t.add_argument("--trigger", type=nonblank, required=True,
                   help="style: the phrase (\"in golden photo style\"); subject: identifier + class (\"sks pitcher\")")
    t.add_argument("--class-word", help="subject tuning: what the subject is (pitcher)")
    t.add_argument("--prior-preservation", action="store_true", help="subject: also learn base-model class images")
    t.add_argument("--prior-images", type=int, help="how many class images the base model generates (default 20)")
    t.add_argument("--model", type=nonblank, required=True, help="diffusers pipeline folder or hub id")
    t.add_argument("--steps", type=int, default=ImageTuneConfig.max_iterations)
    t.add_argument("--learning-rate", type=float, default=ImageTuneConfig.learning_rate)
    t.add_argument("--rank", type=int, default=ImageTuneConfig.rank)
    t.add_argument("--resolution", type=int, default=ImageTuneConfig.resolution)
    t.add_argument("--batch-size", type=int, default=1)
    t.add_argument("--sample-every", type=int, default=ImageTuneConfig.sample_every, help="a sample image every N steps")
    t.add_argument("--prompt", action="append", help="a compare prompt (repeat; default: from the trigger)")
    t.add_argument("--seed", type=int, action="append", help="a compare seed (repeat; default 0 and 1)")
    t.add_argument("--train-seed", type=int, default=0)
    t.add_argument("--inference-steps", type=int, default=ImageTuneConfig.inference_steps)
    t.add_argument("--scoring-model", default="auto", help="CLIP folder for the scores, auto or none")
    t.add_argument("--device", default="auto", choices=DEVICES)
    t.add_argument("--name")
    t.add_argument("--trial", action="store_true", help="time a few real steps and one image; print the projection")
    t.add_argument("--wait", action="store_true")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_tune)

    g = isub.add_parser("generate", parents=[common], help="images from a pipeline, optionally with a tuned LoRA")
    g.add_argument("prompt", type=nonblank)
    g.add_argument("--model", type=nonblank, required=True)
    g.add_argument("--lora", help="image:JOB_ID or a folder with pytorch_lora_weights.safetensors")
    g.add_argument("--seed", type=int, action="append")
    g.add_argument("--out", default="generated")
    g.add_argument("--resolution", type=int, default=512)
    g.add_argument("--inference-steps", type=int, default=30)
    g.add_argument("--guidance", type=float, default=7.5)
    g.add_argument("--device", default="auto", choices=DEVICES)
    g.set_defaults(func=cmd_generate)

    k = isub.add_parser("compare", parents=[common], help="a job's base vs tuned on the same prompts and seeds")
    k.add_argument("--job", type=JOB_ID, required=True)
    k.add_argument("--prompt", action="append", help="repeat; default: the job's compare prompts")
    k.add_argument("--seed", type=int, action="append")
    k.add_argument("--device", default="auto", choices=DEVICES)
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=cmd_compare)

    n = isub.add_parser("tiny-pipeline", parents=[common], help="write a tiny random pipeline (to try the road)")
    n.add_argument("folder")
    n.set_defaults(func=cmd_tiny)
