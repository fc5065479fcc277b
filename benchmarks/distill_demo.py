"""Distillation as a user with one labeled batch and many unlabeled texts would do it, on the shared Debian
data: the teacher is a run tuned on 519 labeled rows (benchmarks/default_sweep.py --final makes one); it
labels 4,000 other descriptions of the shared training file (rows 520-4519, their labels removed); the
student is the base model tuned on the teacher's kept answers; teacher, student and student-before are
scored on the first 300 rows of the shared eval file.

    .venv/bin/python benchmarks/distill_demo.py --stage teacher [--teacher-run RUN_ID]
    .venv/bin/python benchmarks/distill_demo.py --stage student [--steps 130]
    .venv/bin/python benchmarks/distill_demo.py --stage compare

Stages, so each long step can run on its own (the teacher pass is resumable: running the stage again
continues it). Everything goes through the studio's own road (a teacher pass job, the review's default
drops, a student run, the comparison's evaluation jobs). The compare stage appends one JSON line to
benchmarks/results.jsonl."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import distill_compare, jobs, runs  # noqa: E402
from core.config import TeacherPassConfig  # noqa: E402
from core.distill_review import review  # noqa: E402
from core.distill_student import create_student  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
TRAIN, EVAL = SHARED / "debian_classification_train.jsonl", SHARED / "debian_classification_eval.jsonl"
UNLABELED = (519, 4519)  # lines of TRAIN after the teacher's 519


def state_file(ws: Path) -> Path:
    return ws / "distill_demo.json"


def teacher_stage(ws: Path, teacher_run: str | None) -> None:
    state = runs.read_json(state_file(ws), {}) or {}
    job_dir = ws / state["teacher_pass"] if state.get("teacher_pass") else None
    if job_dir is None:
        teacher_run = teacher_run or next(r["run_id"] for r in runs.list_runs(ws) if r["config"].get("name") == "defaults"
                                          and r["status"].get("state") == "succeeded")
        data = ws / "data" / "debian_unlabeled_4000.jsonl"
        data.parent.mkdir(parents=True, exist_ok=True)
        lines = TRAIN.read_text().splitlines()[slice(*UNLABELED)]
        data.write_text("".join(json.dumps({"input_text": json.loads(x)["input_text"]}) + "\n" for x in lines))
        job_dir = jobs.create_teacher_pass(ws, TeacherPassConfig(teacher=f"run:{teacher_run}", task="classification",
                                                                 prompts=str(data), name="teacher on 4,000"))
        state.update(teacher_run=teacher_run, teacher_pass=str(job_dir.relative_to(ws)))
        runs.write_json(state_file(ws), state)
    elif runs.read_status(job_dir).get("state") in ("failed", "cancelled"):
        jobs.resume(job_dir)
    t0 = time.time()
    if runs.read_status(job_dir).get("state") != "succeeded":
        jobs.submit(job_dir)
        status = jobs.wait(job_dir)
        state["teacher_pass_seconds"] = round(time.time() - t0, 1) + state.get("teacher_pass_seconds", 0)
        runs.write_json(state_file(ws), state)
        print(f"teacher pass: {status.get('state')} {status.get('error') or ''}", flush=True)
    print(json.dumps({k: v for k, v in review(job_dir).items() if k != "rows"}), flush=True)


def student_stage(ws: Path, steps: int) -> None:
    state = runs.read_json(state_file(ws), {}) or {}
    run_dir, why = create_student(ws, ws / state["teacher_pass"], steps=steps, name="student of 4,000")
    state.update(student_run=run_dir.name, student_why=why)
    runs.write_json(state_file(ws), state)
    t0 = time.time()
    jobs.submit(run_dir)
    status = jobs.wait(run_dir)
    state["student_seconds"] = round(time.time() - t0, 1)
    runs.write_json(state_file(ws), state)
    print(f"student {run_dir.name}: {status.get('state')} {status.get('error') or ''} ({why})", flush=True)


def compare_stage(ws: Path) -> None:
    state = runs.read_json(state_file(ws), {}) or {}
    scored = ws / "data" / "debian_eval_300.jsonl"
    scored.write_text("".join(EVAL.read_text().splitlines(keepends=True)[:300]))
    t0 = time.time()
    entry = distill_compare.start_comparison(ws, state["student_run"], scored)
    for folder in entry["evaluations"].values():
        jobs.wait(ws / folder)
    comparison = distill_compare.read_comparison(ws, state["student_run"], entry["id"])
    summary = runs.read_json(ws / state["teacher_pass"] / "review.json", {}) or {}
    out = {"date": runs.now_iso(), "benchmark": "distill_demo", "device": "CPU (2 cores, bf16)",
           "teacher_run": state["teacher_run"], "student_run": state["student_run"],
           "unlabeled_rows": UNLABELED[1] - UNLABELED[0], "eval_rows": 300,
           "teacher_pass_seconds": state.get("teacher_pass_seconds"), "student_seconds": state.get("student_seconds"),
           "compare_seconds": round(time.time() - t0, 1), "student_why": state.get("student_why"),
           "review_drop_flags": summary.get("drop_flags"),
           "models": {m["role"]: {"name": m["name"], **m["headline"],
                                  **{k: m.get(k) for k in ("answers_per_s", "parameters", "size_bytes",
                                                           "adapter_bytes", "peak_memory_mb")}}
                      for m in comparison.get("models", [])},
           "summary": comparison.get("summary")}
    print(json.dumps(out, indent=1), flush=True)
    with open(ROOT / "benchmarks" / "results.jsonl", "a") as f:
        f.write(json.dumps(out) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stage", choices=("teacher", "student", "compare"), required=True)
    ap.add_argument("--teacher-run", default=None, help="default: the newest finished run named 'defaults'")
    ap.add_argument("--steps", type=int, default=130, help="student steps (130 at batch 8 = 1,040 teacher answers)")
    ap.add_argument("--workspace", default=str(ROOT / "workspace" / "sweep"))
    a = ap.parse_args()
    ws = runs.workspace_dir(a.workspace)
    {"teacher": lambda: teacher_stage(ws, a.teacher_run), "student": lambda: student_stage(ws, a.steps),
     "compare": lambda: compare_stage(ws)}[a.stage]()


if __name__ == "__main__":
    main()
