"""`studio distill`: a teacher answers your prompts, a student learns to do the task alone. Both halves
are jobs on the one road: the teacher pass (core.distill_teacher) runs and is waited for, its answers are
reviewed by the default rule (core.distill_review: failed, empty and off-label answers are dropped, or
only failed and empty ones with --keep-all), and a student run is tuned on the kept answers
(core.distill_student), waited for with --wait. With --rationale the teacher also explains each answer in
one sentence and the student learns rationale + answer as two tasks (core.distill_rationale; --answer-only
keeps it to the answers). With --compare EVAL_FILE, teacher, student and student-before
are then scored on that file (core.cli.distill_compare); with --student-run, an existing student is."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from core import jobs, runs
from core.cli.common import RUN_ID, fail, model_arg, name_arg, start_run, submit_and_report, workspace
from core.cli.distill_compare import comparison_failure, format_comparison, run_comparison
from core.config import BUNDLED_MODEL, ConfigError, TeacherPassConfig
from core.data import DataError
from core.distill_review import DEFAULT_DROP, UNUSABLE, decide, review
from core.distill_student import ANSWER_ONLY, RATIONALE_AND_ANSWER, create_student, pass_has_rationales
from core.distill_teacher import plan
from core.names import DEVICES, DISTILL_DIR, FINAL_STATES, REVIEW_FILE, TASKS, TEACHER_FILE

TEACHER_PASS_ID = name_arg("teacher pass id", max_len=100)


def _absolute(path: str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None


def _teacher_pass(a, ws: Path) -> Path:
    """The teacher pass to learn from: a new one, queued, or the one --teacher-pass names (resumed when it
    was stopped before the end)."""
    if a.teacher_pass:
        job_dir = ws / DISTILL_DIR / a.teacher_pass
        if not job_dir.is_dir():
            raise FileNotFoundError(f"no teacher pass `{a.teacher_pass}` in {ws / DISTILL_DIR}")
        if runs.read_status(job_dir).get("state") in ("failed", "cancelled"):
            jobs.resume(job_dir)
        return job_dir
    if not a.teacher or not (a.prompts or a.labels):
        raise ConfigError("--teacher and --prompts and/or --labels are required (or --teacher-pass ID to reuse "
                          "the answers of an earlier pass)")
    cfg = TeacherPassConfig(teacher=a.teacher, task=a.task, prompts=_absolute(a.prompts), labeled=_absolute(a.labels),
                            labels=a.label or [], template=a.teacher_template, input_column=a.input_column,
                            output_column=a.output_column, limit=a.limit, batch_size=a.teacher_batch_size,
                            max_output_tokens=a.max_output_tokens, rationale=a.rationale,
                            rationale_tokens=a.rationale_tokens, device=a.device)
    plan(ws, cfg)  # a bad file, a missing label set or an unfinished teacher run fails here, not in the worker
    job_dir = jobs.create_teacher_pass(ws, cfg)
    submit_and_report(job_dir, quiet=a.json)
    return job_dir


def _counts_line(summary: dict) -> str:
    flagged = ", ".join(f"{n} {f.replace('_', ' ')}" for f, n in summary["counts"].items() if n) or "none"
    return (f"{summary['total']} rows: kept {summary['kept']}, dropped {summary['dropped']}"
            + (f", waiting for labels {summary['waiting']}" if summary["waiting"] else "")
            + f"; flagged: {flagged}; dropped flags: {', '.join(summary['drop_flags'])}")


def _compare(a, ws: Path, run_id: str) -> tuple[int, dict | None]:
    """Score teacher, student and student-before on --compare's file; print the table unless --json."""
    try:
        comparison = run_comparison(ws, run_id, a.compare, rows=a.compare_rows, device=a.device, quiet=a.json)
    except (DataError, ConfigError, ValueError, FileNotFoundError) as e:
        return fail(str(e)), None
    problem = comparison_failure(comparison)
    if problem:
        return fail(f"comparison {comparison['id']}: {problem}", code=1), comparison
    if not a.json:
        print(format_comparison(comparison), flush=True)
    return 0, comparison


def cmd_distill(a) -> int:
    ws = workspace(a)
    if a.student_run:  # compare a student made earlier; no teacher pass, no new student
        if not a.compare:
            return fail("--student-run names the student to compare: add --compare EVAL_FILE")
        code, comparison = _compare(a, ws, a.student_run)
        if a.json and comparison is not None:
            print(json.dumps({"student_run": a.student_run, "comparison": comparison}))
        return code
    if a.compare and not a.wait:
        return fail("--compare scores the student once it has finished: add --wait")
    try:
        job_dir = _teacher_pass(a, ws)
    except (DataError, ConfigError, ValueError, FileNotFoundError) as e:
        return fail(str(e))

    def show(status, _new):  # on stderr, so --json keeps stdout to its one line
        print(f"teacher pass {status.get('done') or 0}/{status.get('total') or '?'} rows  "
              f"{status.get('phase') or status.get('state') or ''}".rstrip(), file=sys.stderr, flush=True)

    status = jobs.wait(job_dir, show, poll=0.5)
    if status.get("state") != "succeeded":
        return fail(f"teacher pass {job_dir.name} {status.get('state')}: {status.get('error') or ''}"
                    + (f"\n  {status['hint']}" if status.get("hint") else "")
                    + f"\n  resume it with: studio distill --teacher-pass {job_dir.name} …", code=1)
    if a.keep_all or not (job_dir / REVIEW_FILE).exists():
        summary = decide(job_dir, drop_flags=UNUSABLE if a.keep_all else DEFAULT_DROP)
    else:  # a reused pass keeps the review it was given (on the page or by an earlier command)
        summary = review(job_dir)
    counts = {"rows": summary["total"], "kept": summary["kept"], "dropped": summary["dropped"],
              "waiting": summary["waiting"], "flags": summary["counts"]}
    if not a.json:
        print(f"teacher pass {job_dir.name}: {_counts_line(summary)}", flush=True)
    teacher = (runs.read_json(job_dir / TEACHER_FILE, {}) or {}).get("teacher") or job_dir.name
    explained = pass_has_rationales(job_dir)
    if a.rationale and not explained:
        return fail(f"teacher pass {job_dir.name} was run without rationales: start a new pass with --rationale "
                    "(or leave --rationale out to learn its answers only)")
    learns = RATIONALE_AND_ANSWER if explained and not a.answer_only else ANSWER_ONLY
    try:
        run_dir, why = create_student(ws, job_dir, model=a.student, eval_file=_absolute(a.eval), steps=a.steps,
                                      learns=learns,
                                      learning_rate_multiplier=a.learning_rate_multiplier, template=a.template,
                                      batch_size=a.batch_size, device=a.device, seed=a.seed, processes=a.processes,
                                      name=a.name or f"student of {Path(teacher).name}")
    except (DataError, ConfigError, ValueError) as e:
        return fail(str(e))
    # the student's progress goes to stderr, also with --json (stdout keeps its one line)
    state = start_run(run_dir, why, wait=a.wait, as_json=a.json, label="student run", quiet_progress=False,
                      stream=sys.stderr)
    code, comparison = 0 if state not in FINAL_STATES or state == "succeeded" else 1, None
    if a.compare and state == "succeeded":
        code, comparison = _compare(a, ws, run_dir.name)
    if a.json:
        print(json.dumps({"run_id": run_dir.name, "run_dir": str(run_dir), "status": state,
                          "teacher_pass": job_dir.name, "teacher_pass_dir": str(job_dir), "counts": counts,
                          "learns": learns,
                          **({"comparison": comparison} if comparison is not None else {})}))
    return code


def add_parsers(sub, common) -> None:
    d = sub.add_parser("distill", parents=[common],
                       help="a teacher model answers your prompts; a student run learns its kept answers")
    d.add_argument("--teacher", type=model_arg,
                   help="the teacher: bundled model, hub id, local folder, or run:RUN_ID (a tuned run, its template)")
    d.add_argument("--student", type=model_arg, default=BUNDLED_MODEL, help="the student's base model")
    d.add_argument("--prompts", help="prompts without answers (one text column) for the teacher to answer")
    d.add_argument("--labels", help="a labeled file: answered too, its labels kept beside the teacher's answers "
                                    "(and, for classification, the label set)")
    d.add_argument("--label", action="append", help="a label of the label set (repeatable; default: the "
                                                    "labeled file's, else the teacher run's)")
    d.add_argument("--task", choices=TASKS, default="classification",
                   help="classification: the teacher's answer is its best-scoring label; other tasks: greedy text")
    d.add_argument("--rationale", action="store_true",
                   help="also ask the teacher for a one-sentence rationale of each answer; the student learns "
                        "rationale + answer as two tasks (its answer to the normal prompt stays the answer alone)")
    d.add_argument("--rationale-tokens", type=int, default=48, help="most tokens per rationale (with --rationale)")
    d.add_argument("--answer-only", action="store_true",
                   help="the student learns the answers only, also from a pass that has rationales")
    d.add_argument("--teacher-pass", type=TEACHER_PASS_ID,
                   help="reuse (or resume) an earlier teacher pass instead of starting one")
    d.add_argument("--keep-all", action="store_true",
                   help=f"keep every answered row; by default rows flagged {', '.join(DEFAULT_DROP)} are dropped")
    d.add_argument("--steps", type=int, help="student steps (default: recommended for the task and kept rows)")
    d.add_argument("--learning-rate-multiplier", type=float, help="multiple of the student's base learning rate")
    d.add_argument("--eval", help="eval data for the student's eval loss (prompt → answer)")
    d.add_argument("--template", help="the student's prompt template (default: the task's)")
    d.add_argument("--teacher-template", help="the teacher's prompt template (default: a teacher run's own, "
                                              "else the task's)")
    d.add_argument("--batch-size", type=int, default=8, help="student examples per step")
    d.add_argument("--processes", type=int, default=1,
                   help="train the student on N GPUs at once (torchrun, data parallel); the batch size must be a "
                        "multiple of N")
    d.add_argument("--teacher-batch-size", type=int, default=8, help="rows the teacher answers together")
    d.add_argument("--max-output-tokens", type=int, default=128, help="teacher answer length (text tasks)")
    d.add_argument("--limit", type=int, help="the first N rows only")
    d.add_argument("--input-column")
    d.add_argument("--output-column")
    d.add_argument("--device", default="auto", choices=DEVICES)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--name", help="the student run's name")
    d.add_argument("--wait", action="store_true", help="block until the student run ends, showing progress")
    d.add_argument("--compare", metavar="EVAL_FILE",
                   help="then score teacher, student and student-before on this labeled file and print the "
                        "comparison (metrics, per-class F1, answers/s, parameters, size); needs --wait")
    d.add_argument("--student-run", type=RUN_ID, help="with --compare: compare this existing student run instead "
                                                      "of making one")
    d.add_argument("--compare-rows", type=int, help="with --compare: the first N rows of the eval file")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_distill)

