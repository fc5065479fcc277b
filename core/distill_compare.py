"""Distillation's result: teacher, student and student-before on one eval file, side by side, with the
student's speed and size next to the teacher's (the reason to distill). Nothing is scored here: the
comparison is evaluation jobs on the ordinary road (core.jobs.create_evaluation, core.evaluate), read
back into one record.

  student  the student run with score_base=True: its base model (student-before) and the student answer
           the same rows in one job, as base and tuned
  teacher  a teacher run (`run:ID`) alone (score_base=False), or a base-model teacher through the
           template it answered the teacher pass with

The student run's folder keeps compare.json = {"comparisons": [{id, eval_file, limit, mode, task,
created, evaluations: {role: evaluation folder, relative to the workspace}}]}, so a comparison is found
again later (the page, `studio distill --compare`). Speed is answers per second of generation, model
loading left out (metrics.json); student and student-before answer in one job, so they share its
figure. Memory is the evaluation process's peak, where its worker recorded one."""
from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from core import jobs, runs
from core.config import BUNDLED_MODEL, EvalConfig, resolve_eval_mode
from core.data import load_dataset
from core.evaluate import eval_status
from core.model_size import parameter_estimate
from core.models import RUN_MODEL_PREFIX, bundled_model_dir, model_cache_dir
from core.names import ADAPTER_DIR, CONFIG_FILE, DISTILL_COMPARE_FILE, EVAL_METRICS_FILE, STATES

ROLES = {"teacher": "Teacher", "student": "Student", "student_before": "Student before tuning"}
# Which block of which evaluation holds each role's metrics (the teacher's depends on its kind).
SOURCES = {"student": ("student", "tuned"), "student_before": ("student", "base")}
# The numbers a comparison leads with, per task, in metrics.json's names.
HEADLINES = {"classification": [("macro_f1", "Macro F1"), ("accuracy", "Accuracy")],
             "summarization": [("rouge1_f1", "ROUGE-1 F1"), ("rouge2_f1", "ROUGE-2 F1"),
                               ("rougeL_f1", "ROUGE-L F1"), ("rougeLsum_f1", "ROUGE-Lsum F1")],
             "question_answering": [("f1", "Token F1"), ("exact_match", "Exact match")],
             "text_generation": [("rougeL_f1", "ROUGE-L F1"), ("bleu4", "BLEU-4")]}
WEIGHT_SUFFIXES = (".safetensors", ".bin")
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def student_run(workspace: str | Path, run_id: str) -> tuple[Path, dict]:
    """The folder and config.json of a student run; ValueError for any other run."""
    run_dir = runs.run_path(workspace, run_id)
    config = runs.read_json(run_dir / CONFIG_FILE, {}) or {}
    if not config.get("distilled_from"):
        raise ValueError(f"run {run_id} is not a student run (it did not learn from a teacher pass); "
                         "compare it with its base model on the Evaluate page instead")
    return run_dir, config


def evaluation_configs(workspace: str | Path, run_id: str, eval_file: str | Path, *, limit: int | None = None,
                       mode: str = "auto", device: str = "auto") -> dict[str, EvalConfig]:
    """The evaluations a comparison needs, by role ("student", "teacher"). Raises ValueError (a run that
    cannot answer), DataError (the eval file) or ConfigError (a setting) before anything is created."""
    run_dir, config = student_run(workspace, run_id)
    if not runs.has_adapter(run_dir):
        raise ValueError(f"student run {run_id} has no adapter yet (state: {runs.read_status(run_dir).get('state')}); "
                         "compare it once it has finished")
    origin = config["distilled_from"]
    path = Path(eval_file).expanduser().resolve()
    data = load_dataset(path)  # labeled rows, columns detected: a student learned input_text/output_text
    common = dict(data=str(path), task=config.get("task") or "classification", limit=limit, mode=mode,
                  device=device, input_column=data.input_column, output_column=data.output_column)
    found = {"student": EvalConfig(run_id=run_id, score_base=True, **common)}
    teacher_run = origin.get("teacher_run")
    if teacher_run:
        if not runs.has_adapter(runs.run_path(workspace, teacher_run)):
            raise ValueError(f"the teacher run {teacher_run} has no adapter any more; it cannot be scored")
        found["teacher"] = EvalConfig(run_id=teacher_run, score_base=False, **common)
    else:  # asked as in the teacher pass; its labels are the eval file's (EvalConfig takes no label set)
        found["teacher"] = EvalConfig(model=origin.get("teacher_model") or origin.get("teacher") or BUNDLED_MODEL,
                                      template=origin.get("teacher_template"), **common)
    return found


def start_comparison(workspace: str | Path, run_id: str, eval_file: str | Path, *, limit: int | None = None,
                     mode: str = "auto", device: str = "auto", submit: bool = True) -> dict:
    """Create (and submit) the evaluations of a new comparison and record it in the student's
    compare.json; returns its entry."""
    workspace = Path(workspace).resolve()
    configs = evaluation_configs(workspace, run_id, eval_file, limit=limit, mode=mode, device=device)
    student = configs["student"]
    entry = {"id": runs.new_job_id("compare"), "eval_file": student.data, "limit": limit, "mode": student.mode,
             "task": student.task, "created": runs.now_iso(), "evaluations": {}}
    folders = {role: jobs.create_evaluation(workspace, cfg) for role, cfg in configs.items()}
    entry["evaluations"] = {role: str(d.relative_to(workspace)) for role, d in folders.items()}
    run_dir = runs.run_path(workspace, run_id)
    # Recorded before submitting: a job that starts at once is already part of a findable comparison.
    runs.write_json(run_dir / DISTILL_COMPARE_FILE, {"comparisons": [*_stored(run_dir), entry]})
    if submit:
        for d in folders.values():
            jobs.submit(d)
    return entry


def _stored(run_dir: Path) -> list[dict]:
    data = runs.read_json(run_dir / DISTILL_COMPARE_FILE, {}) or {}
    return [c for c in data.get("comparisons") or [] if isinstance(c, dict) and c.get("evaluations")]


def list_comparisons(workspace: str | Path, run_id: str) -> list[dict]:
    """A student run's comparisons, newest first, each with its progress (comparison_state)."""
    run_dir = runs.run_path(workspace, run_id)
    return [{**c, **comparison_state(workspace, c)} for c in reversed(_stored(run_dir))]


def find_comparison(workspace: str | Path, run_id: str, eval_file: str | Path, limit: int | None = None,
                    mode: str = "auto") -> dict | None:
    """The newest comparison asked the same way that has not failed or been cancelled (to reuse)."""
    path = str(Path(eval_file).expanduser().resolve())
    return next((c for c in list_comparisons(workspace, run_id)
                 if (c["eval_file"], c.get("limit"), c.get("mode")) == (path, limit, resolve_eval_mode(c["task"], mode))
                 and c["state"] not in ("failed", "cancelled")), None)


def comparison_state(workspace: str | Path, entry: dict) -> dict:
    """{"state", "done", "total", "jobs": {role: {"dir", "status"}}}: succeeded when every evaluation has,
    failed or cancelled when one did, running while one runs, else queued."""
    workspace = Path(workspace)
    found = {role: {"dir": str(workspace / rel), "status": eval_status(workspace / rel)}
             for role, rel in entry["evaluations"].items()}
    # A folder that cannot be read (damaged, or deleted with its run) counts as failed.
    states = [j["status"].get("state") if j["status"].get("state") in STATES else "failed" for j in found.values()]
    state = next((s for s in ("failed", "cancelled") if s in states), None) or (
        "succeeded" if all(s == "succeeded" for s in states) else "running" if "running" in states else "queued")
    done = sum(int(j["status"].get("done") or 0) for j in found.values())
    total = sum(int(j["status"].get("total") or 0) for j in found.values())
    return {"state": state, "done": done, "total": total, "jobs": found}


def read_comparison(workspace: str | Path, run_id: str, comparison_id: str | None = None) -> dict | None:
    """One comparison (the newest when no id is given; None when there is none): its entry and progress,
    "models" (one row per role whose evaluation has finished, teacher first) and "summary" (the student
    against the teacher and against its own base model)."""
    workspace = Path(workspace)
    entries = list_comparisons(workspace, run_id)
    entry = next((c for c in entries if comparison_id in (None, c["id"])), None)
    if entry is None:
        if comparison_id:
            raise ValueError(f"student run {run_id} has no comparison {comparison_id}")
        return None
    run_dir, config = student_run(workspace, run_id)
    origin = config["distilled_from"]
    teacher_block = "tuned" if origin.get("teacher_run") else "base"
    sources = {"teacher": ("teacher", teacher_block), **SOURCES}
    who = {"teacher": (origin.get("teacher_model"), _teacher_adapter(workspace, origin),
                       _teacher_name(workspace, origin)),
           "student": (config.get("model"), run_dir / ADAPTER_DIR, runs.display_name(run_dir)),
           "student_before": (config.get("model"), None, _model_name(config.get("model")))}
    models = []
    for role, (job, block) in sources.items():
        j = entry["jobs"].get(job)
        metrics = runs.read_json(Path(j["dir"]) / EVAL_METRICS_FILE, {}) if j else {}
        if not metrics or not metrics.get(block):
            continue
        model, adapter, name = who[role]
        models.append({"role": role, "role_name": ROLES[role], "name": name, "model": model or BUNDLED_MODEL,
                       "evaluation": j["dir"], "metrics": metrics[block],
                       "headline": {k: metrics[block].get(k) for k, _ in HEADLINES.get(entry["task"], [])},
                       "per_class_f1": {r["label"]: r["f1_score"] for r in metrics[block].get("per_label", [])},
                       "answers_per_s": _answers_per_s(metrics), "speed_shared": job == "student",
                       "peak_memory_mb": j["status"].get("peak_memory_mb") or metrics.get("peak_memory_mb"),
                       **footprint(workspace, model, adapter)})
    return {**entry, "student_run": run_id, "models": models, "summary": _summary(models, entry["task"])}


def _answers_per_s(metrics: dict) -> float | None:
    """Answers per second of generation (rows × models answering, over the seconds they took)."""
    if metrics.get("rows_per_second"):
        return float(metrics["rows_per_second"])
    answered = sum(1 for k in ("base", "tuned") if metrics.get(k)) * int(metrics.get("rows") or 0)
    seconds = metrics.get("generation_seconds")
    return round(answered / seconds, 3) if seconds and answered else None


def _summary(models: list[dict], task: str) -> dict:
    """The student's first headline number against the teacher's and its base's, and its speed and
    size as multiples of the teacher's (None where a figure is missing)."""
    by_role = {m["role"]: m for m in models}
    key = (HEADLINES.get(task) or [(None, None)])[0][0]
    student, teacher, before = (by_role.get(r) for r in ("student", "teacher", "student_before"))

    def ratio(a, b):
        return round(a / b, 3) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None

    def delta(other):
        s, o = (student or {}).get("headline", {}).get(key), (other or {}).get("headline", {}).get(key)
        return None if s is None or o is None else round(s - o, 4)
    return {"metric": key, "vs_teacher": delta(teacher), "vs_before": delta(before),
            "speed_vs_teacher": ratio((student or {}).get("answers_per_s"), (teacher or {}).get("answers_per_s")),
            "parameters_vs_teacher": ratio((student or {}).get("parameters"), (teacher or {}).get("parameters")),
            "size_vs_teacher": ratio((student or {}).get("size_bytes"), (teacher or {}).get("size_bytes"))}


# ---------------------------------------------------------------- how big a model is

def footprint(workspace: str | Path, model: str | None, adapter: str | Path | None = None) -> dict:
    """Parameters (core.model_size) and weights on disk of a base model, and of a LoRA adapter on it."""
    out = {"parameters": parameter_estimate(model, workspace), "size_bytes": weights_bytes(workspace, model),
           "adapter_parameters": None, "adapter_bytes": None}
    weights = Path(adapter) / ADAPTER_WEIGHTS if adapter else None
    if weights is not None and weights.is_file():
        out.update(adapter_parameters=safetensors_parameters(weights), adapter_bytes=weights.stat().st_size)
    return out


def weights_bytes(workspace: str | Path, model: str | None) -> int | None:
    """Bytes of a model's weight files: the converted bundled model, a merged `run:ID`, a local folder or
    a hub id already in the local cache (never a download); None when they are not on this machine."""
    model = (model or BUNDLED_MODEL).strip()
    if model == BUNDLED_MODEL:
        return _folder_weights(bundled_model_dir(workspace))
    if model.startswith(RUN_MODEL_PREFIX):
        return _folder_weights(model_cache_dir(workspace) / f"merged-{model[len(RUN_MODEL_PREFIX):]}")
    folder = Path(model).expanduser()
    return _folder_weights(folder) if folder.is_dir() else _hub_cache_weights(model)


def _folder_weights(folder: Path) -> int | None:
    files = [p for p in folder.glob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)] if folder.is_dir() else []
    return sum(p.stat().st_size for p in files) or None


def _hub_cache_weights(repo_id: str) -> int | None:
    try:
        from huggingface_hub import try_to_load_from_cache

        index = try_to_load_from_cache(repo_id, "model.safetensors.index.json")
        names = (sorted(set(json.loads(Path(index).read_text())["weight_map"].values()))
                 if isinstance(index, str) else ["model.safetensors"])
        paths = [try_to_load_from_cache(repo_id, n) for n in names]
    except Exception:  # noqa: BLE001 - not a repo id, no cache, a damaged index: the size is unknown
        return None
    return sum(Path(p).stat().st_size for p in paths) if all(isinstance(p, str) for p in paths) else None


def safetensors_parameters(path: str | Path) -> int | None:
    """Parameters in a .safetensors file, from its header alone (8 bytes of length, then JSON)."""
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
    except (OSError, ValueError, struct.error):
        return None
    return sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")


def _teacher_adapter(workspace: Path, origin: dict) -> Path | None:
    folder = runs.runs_dir(workspace) / origin["teacher_run"] if origin.get("teacher_run") else None
    return folder / ADAPTER_DIR if folder is not None else None


def _teacher_name(workspace: Path, origin: dict) -> str:
    if origin.get("teacher_run"):
        folder = runs.runs_dir(workspace) / origin["teacher_run"]
        return f"run {runs.display_name(folder) if folder.is_dir() else origin['teacher_run']}"
    return _model_name(origin.get("teacher_model") or origin.get("teacher"))


def _model_name(model: str | None) -> str:
    """A model as people call it: the bundled one by its name, a local folder by its last part, a hub id whole."""
    model = model or BUNDLED_MODEL
    if model.startswith("bundled:"):
        return f"{model.removeprefix('bundled:')} (bundled)"
    return Path(model).name if Path(model).expanduser().is_dir() else model


# ---------------------------------------------------------------- in words (the page and the CLI)

def human_count(n: int | None) -> str:
    """134515008 → "134.5M"."""
    if n is None:
        return "–"
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def human_bytes(n: int | None) -> str:
    """538041184 → "538 MB" (decimal units, as disks are sold)."""
    if n is None:
        return "–"
    for size, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= size:
            return f"{n / size:.1f} {unit}" if n < 10 * size else f"{n / size:,.0f} {unit}"
    return f"{n} B"


def speed_and_size(model: dict) -> dict:
    """A model row's speed and size as the table shows them: answers/s, parameters and size on disk
    (each "+ adapter" for a tuned run), peak memory."""
    def plus(base: str, adapter: str | None) -> str:
        return f"{base} + {adapter} adapter" if adapter else base
    adapter_p = human_count(model["adapter_parameters"]) if model.get("adapter_parameters") else None
    adapter_b = human_bytes(model["adapter_bytes"]) if model.get("adapter_bytes") else None
    speed = model.get("answers_per_s")
    return {"answers/s": f"{speed:.2f}" if speed else "–",
            "parameters": plus(human_count(model.get("parameters")), adapter_p),
            "size on disk": plus(human_bytes(model.get("size_bytes")), adapter_b),
            "peak memory": f"{model['peak_memory_mb']:,.0f} MB" if model.get("peak_memory_mb") else "–"}
