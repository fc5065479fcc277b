"""The student, the second half of distillation: a normal supervised tuning run whose training file is
exactly the kept answers of a reviewed teacher pass (input_text = the prompt, output_text = the answer
the student learns), rendered through the student's own template like any run. Its config records where
it came from (`distilled_from`: the teacher, the teacher-pass job, the review's counts), so a page can
put teacher, student and the student's base model side by side.

Each student gets its own training file, written when it is made (workspace/distill/<pass>/student_data/),
so a later change of the review never changes what an earlier student learned."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from core import jobs, runs
from core.config import BUNDLED_MODEL, TuneConfig
from core.data import MIN_EXAMPLES, DataError
from core.distill_review import review
from core.names import JOB_FILE, STUDENT_DATA_DIR, TEACHER_FILE
from core.requests import tune_config
from core.templates import default_template


def student_rows(job_dir: str | Path, summary: dict | None = None) -> list[dict]:
    """The kept rows of a teacher pass (or of its `summary`, core.distill_review.review) as training rows,
    in row order: {"input_text", "output_text"}."""
    return [{"input_text": r["prompt"], "output_text": r["training_answer"]}
            for r in (summary or review(job_dir))["rows"] if r["decision"] == "keep"]


def write_student_data(job_dir: str | Path) -> tuple[Path, int]:
    """A new training file holding the kept rows (JSONL); returns its path and row count."""
    job_dir = Path(job_dir)
    summary = review(job_dir)
    rows = student_rows(job_dir, summary)
    if len(rows) < MIN_EXAMPLES:
        raise DataError(f"the teacher pass {job_dir.name} keeps {len(rows)} rows (of {summary['total']}: "
                        f"{summary['dropped']} dropped, {summary['waiting']} waiting in a labeling queue); "
                        f"a student needs at least {MIN_EXAMPLES}",
                        hint="Answer more prompts, or keep more rows in the review (studio distill --keep-all).")
    path = job_dir / STUDENT_DATA_DIR / f"{runs.new_job_id('student')}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    runs.write_jsonl(path, rows)
    return path, len(rows)


def student_config(workspace: str | Path, job_dir: str | Path, *, model: str = BUNDLED_MODEL,
                   eval_file: str | None = None, **settings) -> tuple[TuneConfig, str]:
    """The student run's TuneConfig (and why it has its steps) for a finished teacher pass. `settings`: what
    core.requests.tune_config takes (steps, learning_rate_multiplier, template, batch_size …). For
    classification the label set is the teacher's, also labels the teacher never chose."""
    workspace, job_dir = Path(workspace), Path(job_dir)
    state = runs.read_status(job_dir).get("state")
    if state != "succeeded":
        raise ValueError(f"teacher pass {job_dir.name} is {state}; a student learns from a finished pass: wait "
                         f"for it, or resume a stopped one with `studio distill --teacher-pass {job_dir.name}`")
    teacher = runs.read_json(job_dir / TEACHER_FILE, {}) or {}
    summary = review(job_dir)
    train_file, kept = write_student_data(job_dir)
    origin = {"teacher": teacher.get("teacher"), "teacher_model": teacher.get("teacher_model"),
              "teacher_run": teacher.get("teacher_run"), "teacher_template": teacher.get("template"),
              "teacher_pass": job_dir.name, "teacher_pass_dir": _pass_path(job_dir),
              "rows": summary["total"], "kept": kept, "dropped": summary["dropped"],
              "waiting": summary["waiting"], "drop_flags": summary["drop_flags"], "counts": summary["counts"]}
    task = teacher.get("task") or "classification"
    try:
        cfg, why = tune_config(workspace, task=task, train_file=str(train_file), eval_file=eval_file, model=model,
                               distilled_from=origin, **settings)
    except Exception:  # a refused request leaves nothing behind
        train_file.unlink(missing_ok=True)
        raise
    if task == "classification" and teacher.get("labels"):
        labels = list(teacher["labels"])
        template = settings.get("template") or default_template(task, labels)
        cfg = dataclasses.replace(cfg, labels=labels, template=template)
    return cfg, f"{kept} kept teacher answers; {why}"


def create_student(workspace: str | Path, job_dir: str | Path, **request) -> tuple[Path, str]:
    """The student run's folder, queued but not submitted (core.jobs.submit starts it): student_config's
    request. Returns the run folder and why it has its steps."""
    cfg, why = student_config(workspace, job_dir, **request)
    return jobs.create_tune(workspace, cfg), why


def _pass_path(job_dir: Path) -> str:
    """The teacher pass's folder relative to its workspace, as its job.json records it."""
    return (runs.read_json(job_dir / JOB_FILE, {}) or {}).get("path") or job_dir.name


def students_of(workspace: str | Path, job_dir: str | Path) -> list[dict]:
    """The runs made from a teacher pass, newest first: {"run_id", "state"} (for the page and the CLI)."""
    name = Path(job_dir).name
    return [{"run_id": r["run_id"], "state": r["status"].get("state")} for r in runs.list_runs(workspace)
            if (r["config"].get("distilled_from") or {}).get("teacher_pass") == name]
