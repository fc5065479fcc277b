"""The student, the second half of distillation: a normal supervised tuning run whose training file is
exactly the kept answers of a reviewed teacher pass (input_text = the prompt, output_text = the answer
the student learns), rendered through the student's own template like any run. Its config records where
it came from (`distilled_from`: the teacher, the teacher-pass job, the review's counts), so a page can
put teacher, student and the student's base model side by side.

Each student gets its own training file, written when it is made (workspace/distill/<pass>/student_data/),
so a later change of the review never changes what an earlier student learned.

With rationales (a pass run with TeacherPassConfig.rationale, core.distill_rationale) the student can learn
"rationale + answer": its file then holds, row by row, the task row (the student's template filled with the
prompt → the answer alone) and the rationale-task row (a distinct instruction → the teacher's rationale).
Two instructions need two prompts, so that file is written as chat turns, the task row's user turn being
the filled template: rendered through the student's chat template it is exactly the prompt evaluation
asks, and the answer to it stays the label alone. "Answer only" writes the task rows alone, as before."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from core import jobs, runs
from core.config import BUNDLED_MODEL, TuneConfig
from core.data import MIN_EXAMPLES, DataError, load_dataset
from core.distill_rationale import rationale_rows
from core.distill_review import review
from core.names import JOB_FILE, STUDENT_DATA_DIR, TEACHER_FILE
from core.requests import tune_config
from core.templates import default_template, fill_template

# What a student learns (distilled_from.learns): the task's answer alone, or also the teacher's rationale.
ANSWER_ONLY, RATIONALE_AND_ANSWER = "answer_only", "rationale_and_answer"


def student_rows(job_dir: str | Path, summary: dict | None = None) -> list[dict]:
    """The kept rows of a teacher pass (or of its `summary`, core.distill_review.review) as training rows,
    in row order: {"input_text", "output_text"}."""
    return [{"input_text": r["prompt"], "output_text": r["training_answer"]}
            for r in (summary or review(job_dir))["rows"] if r["decision"] == "keep"]


def multitask_rows(summary: dict, template: str) -> tuple[list[dict], int]:
    """The kept rows as chat turns, each task row (template filled → answer) followed by its rationale
    row where it has one; returns the rows and how many are rationale rows."""
    rows, explained = [], 0
    for r in summary["rows"]:
        if r["decision"] != "keep":
            continue
        rows.append({"messages": [{"role": "user", "content": fill_template(template, r["prompt"])},
                                  {"role": "assistant", "content": r["training_answer"]}]})
        extra = rationale_rows([r], summary.get("task") or "classification")
        rows += extra
        explained += len(extra)
    return rows, explained


def pass_has_rationales(job_dir: str | Path) -> bool:
    """The pass asked its teacher for rationales (teacher.json records it)."""
    return bool((runs.read_json(Path(job_dir) / TEACHER_FILE, {}) or {}).get("rationale"))


def write_student_data(job_dir: str | Path, template: str | None = None) -> tuple[Path, int, int]:
    """A new training file (JSONL) holding the kept rows, and with a `template` the rationale task too
    (multitask_rows); returns its path, the kept rows and the rationale rows."""
    job_dir = Path(job_dir)
    summary = review(job_dir)
    rows = student_rows(job_dir, summary)
    explained = 0
    if template is not None:
        if not pass_has_rationales(job_dir):
            raise ValueError(f"the teacher pass {job_dir.name} was run without rationales: learn the answer only, "
                             "or run a pass that asks for them (studio distill --rationale)")
        rows, explained = multitask_rows(summary, template)
        if not explained:  # the rationale task would be empty: say so rather than train answers alone
            raise ValueError(f"no kept row of the teacher pass {job_dir.name} has a rationale ("
                             f"{summary['counts'].get('no_rationale', 0)} rows have none, empty or failed: see the "
                             "review's no rationale filter); learn the answer only (studio distill --answer-only)")
    kept = len(rows) - explained
    if kept < MIN_EXAMPLES:
        raise DataError(f"the teacher pass {job_dir.name} keeps {kept} rows (of {summary['total']}: "
                        f"{summary['dropped']} dropped, {summary['waiting']} waiting in a labeling queue); "
                        f"a student needs at least {MIN_EXAMPLES}",
                        hint="Answer more prompts, or keep more rows in the review (studio distill --keep-all).")
    path = job_dir / STUDENT_DATA_DIR / f"{runs.new_job_id('student')}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    runs.write_jsonl(path, rows)
    return path, kept, explained


def student_config(workspace: str | Path, job_dir: str | Path, *, model: str = BUNDLED_MODEL,
                   eval_file: str | None = None, learns: str = ANSWER_ONLY, **settings) -> tuple[TuneConfig, str]:
    """The student run's TuneConfig (and why it has its steps) for a finished teacher pass. `learns`:
    ANSWER_ONLY or RATIONALE_AND_ANSWER (the pass must have rationales). `settings`: what
    core.requests.tune_config takes (steps, learning_rate_multiplier, template, batch_size …). For
    classification the label set is the teacher's, also labels the teacher never chose."""
    if learns not in (ANSWER_ONLY, RATIONALE_AND_ANSWER):
        raise ValueError(f"a student learns {ANSWER_ONLY} or {RATIONALE_AND_ANSWER}, got {learns!r}")
    workspace, job_dir = Path(workspace), Path(job_dir)
    state = runs.read_status(job_dir).get("state")
    if state != "succeeded":
        raise ValueError(f"teacher pass {job_dir.name} is {state}; a student learns from a finished pass: wait "
                         f"for it, or resume a stopped one with `studio distill --teacher-pass {job_dir.name}`")
    teacher = runs.read_json(job_dir / TEACHER_FILE, {}) or {}
    summary = review(job_dir)
    task = teacher.get("task") or "classification"
    labels = list(teacher.get("labels") or []) if task == "classification" else []
    # The rationale task's file carries the filled template (see the docstring): it is fixed here.
    template = settings.get("template") or default_template(task, labels)
    train_file, kept, explained = write_student_data(job_dir, template if learns == RATIONALE_AND_ANSWER else None)
    origin = {"teacher": teacher.get("teacher"), "teacher_model": teacher.get("teacher_model"),
              "teacher_run": teacher.get("teacher_run"), "teacher_template": teacher.get("template"),
              "teacher_pass": job_dir.name, "teacher_pass_dir": _pass_path(job_dir),
              "rows": summary["total"], "kept": kept, "dropped": summary["dropped"],
              "waiting": summary["waiting"], "drop_flags": summary["drop_flags"], "counts": summary["counts"],
              "learns": learns, "rationale_rows": explained}
    multitask = learns == RATIONALE_AND_ANSWER
    try:
        cfg, why = tune_config(workspace, task=task, train_file=str(train_file), model=model, distilled_from=origin,
                               eval_file=None if multitask else eval_file, **settings)
        if multitask:
            # The chat file's column (messages) is neither the eval file's nor what evaluation reads: the
            # run keeps no columns, so both are detected in their own files.
            eval_file = str(Path(eval_file).expanduser().resolve()) if eval_file else None
            if eval_file:
                load_dataset(eval_file)  # a bad eval file fails here, not in the worker
            cfg = dataclasses.replace(cfg, eval_file=eval_file, input_column=None, output_column=None)
    except Exception:  # a refused request leaves nothing behind
        train_file.unlink(missing_ok=True)
        raise
    if labels or multitask:
        cfg = dataclasses.replace(cfg, labels=labels or cfg.labels, template=template)
    extra = f" and {explained} rationale rows" if learns == RATIONALE_AND_ANSWER else ""
    return cfg, f"{kept} kept teacher answers{extra}; {why}"


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
