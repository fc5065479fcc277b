"""Job folders: one protocol for every kind of background work. A job is a folder holding job.json =
{kind, config, path, name} plus the run-folder files (status.json, metrics.jsonl, worker.log …), and runs
as `python -m core.worker DIR` — from the queue (core.job_queue), or unchanged under torchrun/accelerate.

Where each kind lives in the workspace:
  tune        runs/<id>/                (config.json too: the run's contract)
  estimate    estimates/<id>/           (a few real steps, timings kept, weights not)
  evaluate    runs/<run>/evals/<id>/ or evals/<id>/   (metrics.json, predictions.jsonl)
  candidates  jobs/<id>/
  sql         sql/jobs/<id>/            (a statement with ML functions over many rows; result.parquet, result.json)
  teacher_pass distill/<id>/            (distillation: answers.jsonl, teacher.json, review.json, student_data/)
  embed_tune  embeddings/<id>/          (embedding tuning: model/, results.json, per_query.jsonl; core.embed)
  image_tune  images/<id>/              (image tuning: lora/, samples/, compare/; core.images; trials in images/trials/)
  export      runs/<run>/exports/<label>/  (adapter zip, merged folder or GGUF, export.json; core.export)
No torch here: the UI imports this module."""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable

from core import job_queue, runs
from core.config import CandidatesConfig, EmbedTuneConfig, EvalConfig, TeacherPassConfig, TuneConfig
from core.names import ACTIVE_STATES, CANCEL_FILE, CONFIG_FILE, DISTILL_DIR, EMBED_DIR, ESTIMATES_DIR, EVALS_DIR, \
    EXPORTS_DIR, FINAL_STATES, JOB_FILE, JOB_FOLDERS, JOBS_DIR, SQL_JOBS_DIR, STATUS_FILE

# A speed estimate is a real run of a few steps: measured, not guessed. Its first step is not counted
# (it includes one-off set-up), so at least three.
ESTIMATE_STEPS = 4


def _write_job(job_dir: Path, workspace: Path, kind: str, config: dict, name: str) -> Path:
    runs.write_json(job_dir / JOB_FILE, {"kind": kind, "config": config, "name": name,
                                         "path": str(job_dir.relative_to(workspace))})
    return job_dir


def _new_folder(parent: Path, label: str, name: str, kind: str, total: int | None = None) -> Path:
    job_dir = runs.make_job_folder(parent, label)
    runs.write_json(job_dir / STATUS_FILE, {"run_id": job_dir.name, "name": name or job_dir.name, "kind": kind,
                                            "state": "queued", "created": runs.now_iso(), "done": 0,
                                            "total": total})
    return job_dir


def create_tune(workspace: str | Path, config: TuneConfig) -> Path:
    """A tuning run's folder (supervised or DPO), queued: config.json, job.json, status.json."""
    workspace = Path(workspace).resolve()
    cfg = config.to_dict()
    run_dir = runs.create_run(workspace, cfg, name=config.name)
    return _write_job(run_dir, workspace, "tune", cfg, config.name or run_dir.name)


def create_estimate(workspace: str | Path, config: TuneConfig | dict) -> Path:
    """A speed trial of `config`: ESTIMATE_STEPS real steps, no eval (workspace/estimates/<id>/)."""
    workspace = Path(workspace).resolve()
    cfg = config.to_dict() if isinstance(config, TuneConfig) else dict(config)
    trial = {**cfg, "max_iterations": ESTIMATE_STEPS, "eval_every": 100_000, "name": "speed trial"}
    folder = runs.create_run(workspace, trial, folder=ESTIMATES_DIR)
    return _write_job(folder, workspace, "estimate", trial, "speed trial")


def create_evaluation(workspace: str | Path, config: EvalConfig) -> Path:
    """An evaluation's folder: under its run (runs/<run>/evals/) or, for a base model, workspace/evals/."""
    workspace = Path(workspace).resolve()
    parent = runs.run_path(workspace, config.run_id) / EVALS_DIR if config.run_id else workspace / EVALS_DIR
    label = Path(config.data).name.split(".")[0] or "eval"
    name = f"{label} · {runs.display_name(parent.parent) if config.run_id else 'base model'}"
    job_dir = _new_folder(parent, label, name, "evaluate")
    return _write_job(job_dir, workspace, "evaluate", config.to_dict(), name)


def create_candidates(workspace: str | Path, config: CandidatesConfig) -> Path:
    workspace = Path(workspace).resolve()
    job_dir = _new_folder(workspace / JOBS_DIR, "candidates", f"candidates for {config.queue}", "candidates")
    runs.update_status(job_dir, queue=config.queue)
    return _write_job(job_dir, workspace, "candidates", config.to_dict(), f"candidates for {config.queue}")


def create_teacher_pass(workspace: str | Path, config: TeacherPassConfig) -> Path:
    """A teacher pass's folder (workspace/distill/<id>/), queued: the teacher answers every row, and a
    student run is made from the kept answers afterwards (core.distill_student)."""
    workspace = Path(workspace).resolve()
    name = config.name or f"teacher pass · {config.teacher}"
    job_dir = _new_folder(workspace / DISTILL_DIR, "teacher", name, "teacher_pass")
    return _write_job(job_dir, workspace, "teacher_pass", config.to_dict(), name)


def create_embed_tune(workspace: str | Path, config: EmbedTuneConfig) -> Path:
    """An embedding-tuning job's folder (workspace/embeddings/<id>/), queued: it tunes, saves a
    sentence-transformers folder (model/) and scores base and tuned on the test queries (core.embed.tune)."""
    workspace = Path(workspace).resolve()
    model = Path(config.model).name if Path(config.model).is_dir() else config.model.removeprefix("bundled:")
    name = config.name or f"embeddings · {model}"
    job_dir = _new_folder(workspace / EMBED_DIR, "embed", name, "embed_tune")
    runs.update_status(job_dir, step=0, max_steps=config.max_iterations)
    return _write_job(job_dir, workspace, "embed_tune", config.to_dict(), name)


def create_export(workspace: str | Path, config) -> Path:
    """An export of a run (core.export.config.ExportConfig), queued, in runs/<run>/exports/<label>/: one
    folder per format, quantization and checkpoint, so exporting the same again replaces the last one."""
    workspace = Path(workspace).resolve()
    run_dir = runs.run_path(workspace, config.run_id)
    job_dir = run_dir / EXPORTS_DIR / config.label
    if job_dir.exists():
        if runs.read_status(job_dir).get("state") in ACTIVE_STATES:
            raise ValueError(f"the {config.label} export of run {config.run_id} is already queued or running")
        shutil.rmtree(job_dir)
    job_dir.mkdir(parents=True)
    name = f"{config.label} · {runs.display_name(run_dir)}"
    runs.write_json(job_dir / STATUS_FILE, {"run_id": job_dir.name, "name": name, "kind": "export", "state": "queued",
                                            "created": runs.now_iso(), "done": 0, "total": None})
    return _write_job(job_dir, workspace, "export", config.to_dict(), name)


def create_image_tune(workspace: str | Path, config, trial: bool = False) -> Path:
    """An image-tuning job's folder (workspace/images/<id>/), queued: LoRA on a diffusion pipeline's UNet,
    then the base-vs-tuned compare grid (core.images.tune). With `trial`, its speed trial instead
    (workspace/images/trials/<id>/: a few real steps and one image, timings kept)."""
    from core.images.trial import TRIAL_STEPS
    from core.names import IMAGE_TRIALS_DIR, IMAGES_DIR

    workspace = Path(workspace).resolve()
    kind = "image_trial" if trial else "image_tune"
    model = Path(config.model).name if Path(config.model).is_dir() else config.model
    name = "image speed trial" if trial else config.name or f"{config.mode} · {model}"
    job_dir = _new_folder(workspace / (IMAGE_TRIALS_DIR if trial else IMAGES_DIR), "trial" if trial else "image",
                          name, kind)
    runs.update_status(job_dir, step=0, max_steps=TRIAL_STEPS if trial else config.max_iterations)
    return _write_job(job_dir, workspace, kind, config.to_dict(), name)


def create_sql(workspace: str | Path, statement: str, *, allow_dirs=(), device: str = "auto",
               total: int | None = None) -> Path:
    """A SQL statement whose ML functions run over many rows, as a job (workspace/sql/jobs/<id>/). It
    waits in the device queue of the model it uses, so it runs after that model's tuning run."""
    workspace = Path(workspace).resolve()
    code = [line for line in statement.splitlines() if not line.strip().startswith("--")]  # not its comments
    name = " ".join(" ".join(code).split()) or "SQL statement"
    name = name if len(name) <= 60 else name[:59] + "…"
    job_dir = _new_folder(workspace / SQL_JOBS_DIR, "sql", name, "sql", total=total)
    config = {"statement": statement, "allow_dirs": [str(d) for d in allow_dirs], "device": device}
    return _write_job(job_dir, workspace, "sql", config, name)


def read_job(job_dir: str | Path) -> dict:
    """job.json. A tuning run's config.json is its contract and wins over the copy in job.json (it is what
    the trainer reads, also after an edit); a run folder from before job.json existed is a tuning job."""
    job_dir = Path(job_dir)
    job = runs.read_json(job_dir / JOB_FILE, None) or {"kind": "tune", "name": job_dir.name,
                                                       "path": f"runs/{job_dir.name}"}
    if job.get("kind") in ("tune", "estimate") and (job_dir / CONFIG_FILE).exists():
        job["config"] = runs.read_json(job_dir / CONFIG_FILE, {}) or {}
    return job


def list_jobs(workspace: str | Path, kind: str) -> list[dict]:
    """Job folders of one kind, newest first: {"dir", "id", "config", "status"}."""
    workspace = Path(workspace)
    found = [d for pattern in JOB_FOLDERS[kind] for d in workspace.glob(pattern) if (d / STATUS_FILE).exists()]
    found.sort(key=lambda d: d.name, reverse=True)  # ids start with their creation time
    return [{"dir": str(d), "id": d.name, "config": read_job(d).get("config") or {}, "status": runs.read_status(d)}
            for d in found]


# ---------------------------------------------------------------- submitting, watching, stopping

def submit(job_dir: str | Path) -> str:
    """Into the device's queue: "started" now, or "queued" behind the jobs ahead."""
    return job_queue.submit(job_dir)


def cancel(job_dir: str | Path) -> None:
    """Ask a running job to stop (a tuning run stops after its current step, keeping the adapter trained
    so far and a checkpoint to resume from); a job still waiting in the queue is simply taken out."""
    job_dir = Path(job_dir)
    workspace = job_queue.workspace_of(job_dir)
    if job_dir.name in job_queue.queue(workspace):
        job_queue.remove(workspace, job_dir.name)
        return
    (job_dir / CANCEL_FILE).touch()


def cancel_requested(job_dir: str | Path) -> bool:
    return (Path(job_dir) / CANCEL_FILE).exists()


def resume(run_dir: str | Path) -> str:
    """Go on from a failed or cancelled run's last checkpoint to the same final step, through the queue.
    A teacher pass needs no checkpoint: its answers file is read back and only the rows not yet answered
    are answered."""
    run_dir = Path(run_dir)
    status = runs.read_status(run_dir)
    if status.get("state") not in ("failed", "cancelled"):
        raise ValueError(f"run {run_dir.name} is {status.get('state')}; only failed or cancelled runs resume")
    if read_job(run_dir).get("kind") != "teacher_pass" and runs.last_checkpoint(run_dir) is None:
        raise ValueError(f"run {run_dir.name} has no checkpoint yet (one is saved every `eval_every` steps "
                         "and on cancel); start it again instead")
    (run_dir / CANCEL_FILE).unlink(missing_ok=True)
    runs.update_status(run_dir, state="queued", error=None, hint=None, finished=None, resume=True, pid=None)
    return submit(run_dir)


def wait(job_dir: str | Path, on_update: Callable[[dict, list[dict]], None] | None = None,
         poll: float = 1.0, timeout: float | None = None) -> dict:
    """Block until the job reaches a final state; call on_update(status, new_metrics) as it goes."""
    start, seen, last = time.time(), 0, None
    while True:
        status = runs.read_status(job_dir)
        metrics = runs.read_metrics(job_dir)
        changed = len(metrics) > seen or status.get("done") != last
        if on_update and (changed or status.get("state") in FINAL_STATES):
            on_update(status, metrics[seen:])
        seen, last = len(metrics), status.get("done")
        if status.get("state") in FINAL_STATES:
            return status
        if timeout is not None and time.time() - start > timeout:
            raise TimeoutError(f"job {Path(job_dir).name} did not finish in {timeout:.0f} s")
        time.sleep(poll)


def delete_run(run_dir: str | Path) -> None:
    """Delete a run folder, taking it out of the queue first if it is waiting there."""
    run_dir = Path(run_dir)
    workspace = job_queue.workspace_of(run_dir)
    if run_dir.name in job_queue.queue(workspace):
        job_queue.remove(workspace, run_dir.name)
    runs.delete(run_dir)


# ---------------------------------------------------------------- speed trials

def start_estimate(workspace: str | Path, config: TuneConfig | dict) -> Path:
    """Time a few real tuning steps of `config` as a job in the queue; read it with estimate_from."""
    folder = create_estimate(workspace, config)
    submit(folder)
    return folder


def estimate_from(folder: str | Path, config: dict) -> dict | None:
    """Seconds per step, the projected duration of `config` and peak memory, once the trial is done
    (None before). Reads only: the trial's worker removed its weights itself."""
    status = runs.read_status(folder)
    if status.get("state") not in FINAL_STATES:
        return None
    if status["state"] != "succeeded":
        return {"error": status.get("error", "the trial run failed"), "hint": status.get("hint", "")}
    times = [m["time"] for m in runs.read_metrics(folder) if "loss" in m]
    deltas = sorted(b - a for a, b in zip(times, times[1:]))
    per_step = deltas[len(deltas) // 2] if deltas else None
    if per_step is None:
        return {"error": "the trial run logged no steps"}
    steps, every = int(config["max_iterations"]), int(config.get("eval_every") or 0)
    # An eval pass runs forward only (about a third of a training step) over up to 64 rows.
    eval_batches = -(-min(64, status.get("eval_rows") or 0) // max(1, int(config.get("batch_size", 8))))
    evals = steps // every if every and eval_batches else 0
    total = steps * per_step + evals * eval_batches * per_step / 3
    return {"seconds_per_step": round(per_step, 2), "steps": steps, "total_seconds": round(total),
            "peak_memory_mb": status.get("peak_memory_mb"), "device": status.get("device"),
            "precision": status.get("precision")}
