"""What an image tuning run will cost here, from a measured speed trial (a job that loads the pipeline, runs
a few real LoRA steps and generates one image with the run's settings): the projected seconds of the whole
run, its parts named. No torch here: the page imports this."""
from __future__ import annotations

from core import jobs
from core.names import FINAL_STATES

TRIAL_STEPS = 4                 # the first is not counted (one-off set-up), so the median of three
LONG_RUN_SECONDS = 15 * 60      # above this the page asks the user to confirm before starting
# The settings a step's and an image's cost depend on: a trial answers for a run only when they match.
COST_KEYS = ("model", "resolution", "rank", "batch_size", "prior_preservation", "device", "inference_steps",
             "guidance_scale")


def cost_key(config: dict) -> tuple:
    return tuple(str(config.get(k)) for k in COST_KEYS)


def images_generated(config: dict) -> dict[str, int]:
    """Images a run generates besides training: prior images, samples along the way, the compare grid."""
    steps, every = int(config["max_iterations"]), int(config.get("sample_every") or 0)
    return {"prior": int(config.get("prior_images") or 0) if config.get("prior_preservation") else 0,
            "samples": steps // every if every else 0,
            "compare": 2 * len(config.get("compare_prompts") or []) * len(config.get("compare_seeds") or [])
            if config.get("compare", True) else 0}


def project(config: dict, trial_status: dict) -> dict | None:
    """{"total_seconds", "parts": {name: seconds}, "seconds_per_step", "seconds_per_image", "device"} of
    `config` from a finished trial's status; None when the trial has no timings."""
    per_step, per_image = trial_status.get("seconds_per_step"), trial_status.get("seconds_per_image")
    if not per_step or per_image is None:
        return None
    counts = images_generated(config)
    parts = {"loading": float(trial_status.get("load_seconds") or 0),
             "training": int(config["max_iterations"]) * per_step,
             "prior images": counts["prior"] * per_image, "samples": counts["samples"] * per_image,
             "compare grid": counts["compare"] * per_image}
    return {"total_seconds": round(sum(parts.values())), "parts": {k: round(v) for k, v in parts.items() if v},
            "seconds_per_step": per_step, "seconds_per_image": per_image, "device": trial_status.get("device")}


def matching_trial(workspace, config: dict) -> dict | None:
    """The newest speed trial with the same cost settings: {"dir", "status", "state", "projection"}."""
    key = cost_key(config)
    for job in jobs.list_jobs(workspace, "image_trial"):
        if cost_key(job["config"]) == key:
            status = job["status"]
            done = status.get("state") in FINAL_STATES
            return {"dir": job["dir"], "status": status, "state": status.get("state"),
                    "projection": project(config, status) if done and status.get("state") == "succeeded" else None}
    return None
