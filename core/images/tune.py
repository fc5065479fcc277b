"""LoRA tuning of a text-to-image pipeline, as diffusers' DreamBooth-LoRA and text-to-image LoRA recipes do
it: the UNet's attention projections get a peft LoRA (unet.add_adapter), everything else stays frozen, and
each step learns to predict the noise added to a training image's latents at a random timestep (MSE; with
prior preservation the bare-class images' loss is added, weighted). Two things are made cheap without
changing that math: the captions are fixed, so their text embeddings are computed once, and the images are
fixed, so the VAE encodes each once (its latent distribution is kept and sampled every step).

run_image_tuning(job_dir) writes the job folder like every tuning job: status.json (step, ETA, phase),
metrics.jsonl (loss every step), samples/ + samples.jsonl (an image from the sample prompt every
`sample_every` steps), lora/pytorch_lora_weights.safetensors (the standard file pipe.load_lora_weights
loads), and compare/ (base vs tuned, core.images.generate). A speed trial (kind image_trial) runs
TRIAL_STEPS steps and one image and keeps only the timings."""
from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path

from core import job_queue, jobs, runs
from core.images import generate
from core.images.config import ImageTuneConfig
from core.images.files import image_files, usable_images
from core.images.models import LORA_DIR, LORA_FILE, SDXL_CLASSES, resolve_image_model
from core.images.trial import TRIAL_STEPS
from core.models import describe_device, pick_device
from core.monitor import Worker, peak_memory_mb
from core.names import SAMPLES_FILE

LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]
PRIOR_DIR, SAMPLES_DIR = "prior", "samples"


def pixels(path: Path, resolution: int):
    """An image as the VAE wants it: shorter side resized to `resolution`, centre square, values in [-1, 1]."""
    import numpy as np
    import torch
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        scale = resolution / min(im.size)
        im = im.resize((max(resolution, round(im.width * scale)), max(resolution, round(im.height * scale))),
                       Image.Resampling.BILINEAR)
        left, top = (im.width - resolution) // 2, (im.height - resolution) // 2
        im = im.crop((left, top, left + resolution, top + resolution))
        array = np.asarray(im, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)


def encode_images(vae, paths: list[Path], resolution: int, device, dtype):
    """(mean, std) of each image's latent distribution, on `device`."""
    import torch

    means, stds = [], []
    with torch.no_grad():
        for path in paths:
            dist = vae.encode(pixels(path, resolution)[None].to(device, dtype)).latent_dist
            means.append(dist.mean)
            stds.append(dist.std)
    return torch.cat(means), torch.cat(stds)


def encode_prompt(pipe, prompt: str, device, resolution: int) -> dict:
    """The UNet's text conditioning of one prompt: SD's hidden states, or SDXL's two encoders' states plus
    the pooled embedding and the size/crop ids its added conditions expect."""
    import torch

    with torch.no_grad():
        out = pipe.encode_prompt(prompt=prompt, device=device, num_images_per_prompt=1,
                                 do_classifier_free_guidance=False)
    cond = {"encoder_hidden_states": out[0]}
    if type(pipe).__name__ in SDXL_CLASSES:
        ids = torch.tensor([[resolution, resolution, 0, 0, resolution, resolution]], device=device, dtype=out[0].dtype)
        cond["added_cond_kwargs"] = {"text_embeds": out[2], "time_ids": ids}
    return cond


def _batched(cond: dict, n: int) -> dict:
    out = {"encoder_hidden_states": cond["encoder_hidden_states"].expand(n, -1, -1)}
    if "added_cond_kwargs" in cond:
        out["added_cond_kwargs"] = {k: v.expand(n, -1) for k, v in cond["added_cond_kwargs"].items()}
    return out


def noise_loss(unet, scheduler, mean, std, cond: dict, generator):
    """The recipes' loss: noise the latents at random timesteps and score the UNet's prediction of the
    noise (or of the velocity, for v-prediction models such as SD 2.x 768)."""
    import torch
    import torch.nn.functional as F

    latents = (mean + std * torch.randn(mean.shape, generator=generator).to(mean)) * unet.scaling
    noise = torch.randn(latents.shape, generator=generator).to(latents)
    steps = torch.randint(0, scheduler.config.num_train_timesteps, (latents.shape[0],), generator=generator)
    steps = steps.to(latents.device)
    noisy = scheduler.add_noise(latents, noise, steps)
    target = scheduler.get_velocity(latents, noise, steps) if scheduler.config.prediction_type == "v_prediction" else noise
    pred = unet(noisy, steps, **_batched(cond, latents.shape[0])).sample
    return F.mse_loss(pred.float(), target.float())


def add_lora(unet, rank: int) -> list:
    """peft LoRA on the attention projections (the recipes' targets); returns the trainable parameters."""
    import torch
    from peft import LoraConfig

    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=LORA_TARGETS))
    params = [p for p in unet.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.to(torch.float32)  # the adapter trains in fp32 beside bf16 frozen weights
    return params


def save_lora(pipe, folder: Path) -> Path:
    """The UNet's LoRA in diffusers' format (pytorch_lora_weights.safetensors), written beside and renamed."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    tmp = folder.parent / f".{folder.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet))
    type(pipe).save_lora_weights(str(tmp), unet_lora_layers=layers, safe_serialization=True, weight_name=LORA_FILE)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def set_adapter(pipe, on: bool) -> None:
    pipe.unet.enable_adapters() if on else pipe.unet.disable_adapters()


def prior_images(pipe, cfg: ImageTuneConfig, job_dir: Path, worker: Worker) -> list[Path]:
    """The bare class generated by the base model (kept: a resumed or repeated run reuses them)."""
    folder = job_dir / PRIOR_DIR
    folder.mkdir(exist_ok=True)
    for i in range(cfg.prior_images):
        path = folder / f"class-{i + 1:03d}.png"
        if not path.exists():
            worker.status(phase=f"generating prior images ({i + 1} of {cfg.prior_images})")
            generate.generate(pipe, cfg.class_prompt, cfg.seed * 1000 + i, cfg.resolution, cfg.inference_steps,
                              cfg.guidance_scale).save(path)
    return image_files(folder)[:cfg.prior_images]


def sample(pipe, cfg: ImageTuneConfig, job_dir: Path, step: int) -> float:
    started = time.time()
    pipe.unet.eval()
    image = generate.generate(pipe, cfg.sample_prompt, cfg.seed, cfg.resolution, cfg.inference_steps, cfg.guidance_scale)
    pipe.unet.train()
    (job_dir / SAMPLES_DIR).mkdir(exist_ok=True)
    name = f"{SAMPLES_DIR}/step-{step:05d}.png"
    image.save(job_dir / name)
    seconds = round(time.time() - started, 2)
    runs.append_jsonl(job_dir / SAMPLES_FILE, {"step": step, "image": name, "prompt": cfg.sample_prompt, "seconds": seconds})
    return seconds


def run_image_tuning(job_dir: str | Path, worker: Worker | None = None, trial: bool = False):
    """Tune (or time, for a trial) as job.json says; returns the pipeline with its adapter. Failures
    propagate (core.worker records them with a hint)."""
    import torch

    started = time.time()
    job_dir = Path(job_dir)
    worker = worker or Worker(job_dir)
    cfg = ImageTuneConfig.from_dict(jobs.read_job(job_dir).get("config") or {})
    workspace = job_queue.workspace_of(job_dir)
    training = usable_images(cfg.images, cfg.resolution)
    device = pick_device(cfg.device)
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    steps = TRIAL_STEPS if trial else cfg.max_iterations
    worker.status(phase="loading the pipeline", device=describe_device(device), precision=str(dtype).split(".")[-1],
                  images=len(training), max_steps=steps, step=0)
    pipe = generate.load_pipeline(resolve_image_model(cfg.model, workspace), workspace, device, dtype)
    unet = pipe.unet
    unet.scaling = pipe.vae.config.scaling_factor
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    generator = torch.Generator("cpu").manual_seed(cfg.seed)
    worker.status(phase="encoding the images and prompts")
    mean, std = encode_images(pipe.vae, training, cfg.resolution, device, dtype)
    cond = encode_prompt(pipe, cfg.instance_prompt, device, cfg.resolution)
    prior = None
    if cfg.prior_preservation:
        # a trial times the doubled step without drawing the prior images first: the instance images stand in
        paths = [] if trial else prior_images(pipe, cfg, job_dir, worker)
        latents = (mean, std) if trial else encode_images(pipe.vae, paths, cfg.resolution, device, dtype)
        prior = (*latents, encode_prompt(pipe, cfg.class_prompt, device, cfg.resolution))
    load_seconds = round(time.time() - started, 2)
    params = add_lora(unet, cfg.rank)
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=1e-2)
    unet.train()
    worker.status(phase="training", trainable_parameters=sum(p.numel() for p in params))
    t0, step_times, cancelled = time.time(), [], False
    for step in range(1, steps + 1):
        tick = time.time()
        pick = torch.randint(0, len(training), (cfg.batch_size,), generator=generator)
        with torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32):
            loss = noise_loss(unet, scheduler, mean[pick], std[pick], cond, generator)
            if prior is not None:
                ppick = torch.randint(0, len(prior[0]), (cfg.batch_size,), generator=generator)
                loss = loss + cfg.prior_loss_weight * noise_loss(unet, scheduler, prior[0][ppick], prior[1][ppick],
                                                                 prior[2], generator)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step_times.append(time.time() - tick)
        runs.append_metrics(job_dir, {"step": step, "time": round(time.time() - t0, 2), "loss": round(loss.item(), 6),
                                      "learning_rate": cfg.learning_rate})
        per_step = statistics.median(step_times[1:] or step_times)
        worker.status(step=step, elapsed_s=round(time.time() - t0, 1), eta_s=round(per_step * (steps - step), 1),
                      phase="training")
        if not trial and cfg.sample_every and step % cfg.sample_every == 0 and step < steps:
            worker.status(phase=f"generating the sample of step {step}")
            sample(pipe, cfg, job_dir, step)
        if jobs.cancel_requested(job_dir):
            cancelled = True
            break
    done = step
    if trial:
        worker.status(phase="timing one image")
        per_image = sample(pipe, cfg, job_dir, done)
        shutil.rmtree(job_dir / SAMPLES_DIR, ignore_errors=True)  # a trial keeps its timings, not its pictures
        (job_dir / SAMPLES_FILE).unlink(missing_ok=True)
        worker.status(state="succeeded", phase="done", finished=runs.now_iso(), step=done, load_seconds=load_seconds,
                      seconds_per_step=round(statistics.median(step_times[1:] or step_times), 3),
                      seconds_per_image=per_image, peak_memory_mb=round(peak_memory_mb(device)))
        return pipe
    if cfg.sample_every and not cancelled:
        worker.status(phase="generating the last sample")
        sample(pipe, cfg, job_dir, done)
    worker.status(phase="saving the LoRA weights")
    save_lora(pipe, job_dir / LORA_DIR)
    train_seconds = round(time.time() - t0, 1)
    if cfg.compare and not cancelled:
        def progress(n, total):
            worker.status(phase=f"compare grid: image {n} of {total}")
        generate.compare(pipe, cfg.compare_prompts, cfg.compare_seeds, job_dir / generate.COMPARE_DIR,
                         resolution=cfg.resolution, steps=cfg.inference_steps, guidance=cfg.guidance_scale,
                         set_tuned=set_adapter, training_images=training, scoring_model=cfg.scoring_model,
                         workspace=workspace, progress=progress)
    worker.status(state="cancelled" if cancelled else "succeeded", finished=runs.now_iso(), phase="done", step=done,
                  train_seconds=train_seconds, total_seconds=round(time.time() - started, 1),
                  peak_memory_mb=round(peak_memory_mb(device)))
    return pipe
