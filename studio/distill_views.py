"""The Distill page's teacher and student steps: the teacher-pass form (teacher, prompts, optional labeled
rows, batch size, an optional rationale per answer) and the pass's card with live progress, cancel and
resume; the student form (model, steps, learning-rate multiplier, eval file, and for a pass with rationales
what the student learns: rationale + answer or answer only) and the student run's live card (studio.run_views). Every
decision is core's (core.distill_teacher, core.distill_student, core.jobs); this module lays them out."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import inventory, job_queue, jobs, runs
from core.config import BUNDLED_MODEL, TeacherPassConfig, base_learning_rate, recommend_steps
from core.data import MIN_EXAMPLES, DataError
from core.distill_student import ANSWER_ONLY, RATIONALE_AND_ANSWER, create_student, students_of
from core.distill_teacher import plan, read_answers
from core.model_size import parameter_estimate
from core.models import RUN_MODEL_PREFIX
from core.names import ACTIVE_STATES, DEVICES, TASK_NAMES, TASKS, TEACHER_FILE
from studio import run_views, ui

OTHER_MODEL = "\x00other"
PROMPT_SOURCES = {"dataset": "A dataset in the workspace", "upload": "Upload a file", "path": "A file path"}
BATCH_SIZES = [1, 2, 4, 8, 16, 32]
LEARNS = {RATIONALE_AND_ANSWER: "Rationale + answer (two tasks)", ANSWER_ONLY: "Answer only"}


def say(kind: str, text: str) -> None:
    ui.say(kind, text, key="dv_message")


# ---------------------------------------------------------------- 1 · the teacher pass

def teacher_choices(ws: Path) -> dict[str, str]:
    """Teachers to choose from: the bundled model, every finished run (asked through its own template),
    or another model typed in."""
    choices = {BUNDLED_MODEL: f"Base model · {run_views.model_name(BUNDLED_MODEL)}"}
    for r in runs.finished_runs(ws):
        choices[f"{RUN_MODEL_PREFIX}{r['run_id']}"] = f"Tuned run · {ui.run_label(r, state=False)}"
    choices[OTHER_MODEL] = "Another model: a Hugging Face id or a local folder"
    return choices


def prompts_file(ws: Path) -> str | None:
    """The unlabeled prompts: a workspace dataset, an upload (kept in the workspace) or a path."""
    source = st.radio("Prompts from", list(PROMPT_SOURCES), format_func=PROMPT_SOURCES.get, horizontal=True,
                      key="dv_prompts_from")
    if source == "dataset":
        return ui.pick_dataset("Prompts without answers", key="dv_prompts", optional=True, hide_broken=False,
                               none_label="None: only the labeled rows below",
                               help="One text column (input_text, prompt or text); answers, if any, are ignored.")
    if source == "upload":
        upload = st.file_uploader("Prompts file", type=ui.UPLOAD_TYPES, key="dv_prompts_upload")
        if upload is None:
            return None
        try:
            return str(inventory.save_upload(ws, upload.name, upload.getvalue()))
        except DataError as e:
            ui.show_data_error(e)
            return None
    path = st.text_input("Prompts file path", key="dv_prompts_path", placeholder="/data/unlabeled.jsonl").strip()
    if path and not Path(path).expanduser().is_file():
        st.error(f"No file at `{path}`.", icon=":material/report:")
        return None
    return str(Path(path).expanduser().resolve()) if path else None


def teacher_form(ws: Path) -> None:
    choices = teacher_choices(ws)
    c1, c2 = st.columns([3, 2])
    pick = c1.selectbox("Teacher", list(choices), format_func=choices.get, key="dv_teacher",
                        help="A bigger or better-tuned model. A tuned run answers through its own prompt template.")
    teacher = pick
    if pick == OTHER_MODEL:
        teacher = c1.text_input("Teacher model", key="dv_teacher_other",
                                placeholder="HuggingFaceTB/SmolLM2-360M-Instruct or /path/to/model").strip()
    run_task = None
    if pick.startswith(RUN_MODEL_PREFIX):
        run_task = next((r["config"].get("task") for r in runs.finished_runs(ws)
                         if r["run_id"] == pick[len(RUN_MODEL_PREFIX):]), None)
    task = c2.selectbox("Task", TASKS, index=TASKS.index(run_task) if run_task in TASKS else 0,
                        format_func=TASK_NAMES.get, key=f"dv_task::{pick}",
                        help="Classification: the teacher's answer is its best-scoring label, always one of the "
                             "label set. Other tasks: the teacher writes its answer (greedy).")
    prompts = prompts_file(ws)
    c1, c2 = st.columns([3, 2])
    with c1:
        labeled = ui.pick_dataset("Labeled rows (optional)", key="dv_labeled", optional=True, none_label="None",
                                  help="Prompt → answer rows: the teacher answers them too, and its answers are "
                                       "checked against yours in the review. For classification their labels are "
                                       "the label set.")
    labels = ""
    if task == "classification":
        labels = c2.text_input("Labels (optional)", key="dv_labels", placeholder="games, mail, science",
                               help="Comma-separated. Default: the labeled rows' labels, else the teacher run's.")
    c = st.columns(4)
    batch = c[0].selectbox("Batch size", BATCH_SIZES, index=3, key="dv_teacher_batch",
                           help="Rows the teacher answers together; lower it if memory runs out.")
    limit = c[1].number_input("Rows (0 = all)", 0, 10_000_000, value=0, key="dv_limit",
                              help="The first N rows only: prompts first, then the labeled rows.")
    device = c[2].selectbox("Device", DEVICES, key="dv_device", help="auto picks a GPU when there is one.")
    name = c[3].text_input("Name (optional)", key="dv_pass_name")
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    rationale = c1.checkbox("Also ask the teacher why (a one-sentence rationale per answer)", key="dv_rationale",
                            help="Distilling step-by-step: the student can then learn the rationales as a second "
                                 "task, while its answer to the normal prompt stays the answer alone. Costs one "
                                 "short generation per row.")
    rationale_tokens = c2.number_input("Rationale length (tokens)", 1, 512, value=48, key="dv_rationale_tokens",
                                       disabled=not rationale)
    if st.button("Start the teacher pass", type="primary", icon=":material/school:", key="dv_start",
                 disabled=not teacher or not (prompts or labeled)):
        start_pass(ws, dict(
            teacher=teacher, task=task, prompts=prompts, labeled=labeled, batch_size=int(batch),
            labels=[x.strip() for x in labels.split(",") if x.strip()], limit=int(limit) or None, device=device,
            rationale=bool(rationale), rationale_tokens=int(rationale_tokens), name=name.strip()))
    elif not (prompts or labeled):
        st.caption("Choose prompts, labeled rows or both for the teacher to answer.")


def start_pass(ws: Path, request: dict) -> None:
    """Check the request as the CLI does (files, label set, teacher run) before anything is queued."""
    try:
        cfg = TeacherPassConfig(**request)
        rows = len(plan(ws, cfg)["rows"])
    except ValueError as e:  # DataError and ConfigError among them
        ui.show_request_error(e)
        return
    job_dir = jobs.create_teacher_pass(ws, cfg)
    outcome = jobs.submit(job_dir)
    st.session_state["dv_pass"] = job_dir.name  # the picker below is drawn after this
    st.success(f"Teacher pass started: {rows} rows to answer." if outcome == "started" else
               f"Teacher pass queued ({rows} rows): it starts when the jobs ahead of it finish.",
               icon=":material/school:")


def pass_label(job: dict) -> str:
    status = job["status"]
    return f"{status.get('name') or job['id']}  ·  {status.get('state')}  ·  {job['id']}"


def _cancel(job_dir: Path) -> None:
    try:
        jobs.cancel(job_dir)
    except ValueError as e:
        say("error", str(e))


def _resume(job_dir: Path) -> None:
    try:
        outcome = jobs.resume(job_dir)
    except ValueError as e:
        say("error", f"**Cannot resume:** {e}")
    else:
        say("success", "Resumed: only the rows without an answer are asked." if outcome == "started"
            else "Resume queued: it goes on after the jobs ahead of it.")


def pass_card(ws: Path, job_dir: Path, status: dict) -> None:
    """What the teacher is, how far it got (answered and failed rows), and what can be done."""
    teacher = runs.read_json(job_dir / TEACHER_FILE, {}) or (jobs.read_job(job_dir).get("config") or {})
    state = status.get("state")
    answers = read_answers(job_dir)
    failed = sum(r.get("status") != "ok" for r in answers.values())
    total = int(status.get("total") or teacher.get("rows") or 0)
    head, badge = st.columns([5, 1], vertical_alignment="center")
    head.markdown(f"**{status.get('name') or job_dir.name}**")
    head.caption(" · ".join(str(x) for x in (
        teacher.get("teacher"), TASK_NAMES.get(teacher.get("task"), teacher.get("task")),
        f"{len(teacher.get('labels') or [])} labels" if teacher.get("labels") else None,
        f"created {str(status.get('created', ''))[:16].replace('T', ' ')}", job_dir.name) if x))
    with badge:
        ui.status_badge(state)
    if state == "failed":
        ui.show_failure("The teacher pass", status)
    if state == "queued":
        place = job_queue.position(ws, job_dir.name)
        st.progress(0.0, text=f"Waiting: position {place[0]} of {place[1]} in the queue" if place
                    else "Starting the worker…")
    elif state == "running":
        done = int(status.get("done") or 0)
        what = "loading the teacher" if not answers and not done else f"{len(answers)} of {total} rows answered"
        st.progress(min(1.0, len(answers) / total) if total else 0.0,
                    text=what + (f" · {failed} failed" if failed else ""))
    c = st.columns(4)
    c[0].metric("Rows", f"{total:,}", border=True)
    c[1].metric("Answered", f"{len(answers) - failed:,}", border=True)
    c[2].metric("Failed", f"{failed:,}", border=True,
                help="Rows the teacher could not answer (the error is kept); they never reach the student.")
    if teacher.get("rationale"):
        explained = sum(bool(r.get("rationale")) for r in answers.values())
        st.caption(f":material/lightbulb: Rationales: {explained} of {len(answers) - failed} answered rows. Rows "
                   "without one (empty or failed) still teach their answer: filter them by **no rationale** below.")
    with c[3]:
        if state in ACTIVE_STATES and not jobs.cancel_requested(job_dir):
            st.button("Cancel", icon=":material/stop_circle:", key=f"dv_cancel::{job_dir.name}", on_click=_cancel,
                      args=(job_dir,), help="Answers written so far are kept; resume answers only the rest.")
        elif state in ("failed", "cancelled"):
            st.button("Resume", icon=":material/play_circle:", key=f"dv_resume::{job_dir.name}", type="primary",
                      on_click=_resume, args=(job_dir,), help="Answers only the rows not answered yet.")


@st.fragment(run_every=2)
def live_pass(ws: Path, job_dir: Path) -> None:
    status = runs.read_status(job_dir)
    pass_card(ws, job_dir, status)
    if status.get("state") not in ACTIVE_STATES:
        st.rerun()  # the whole page: the review and the student steps open


def show_pass(ws: Path, job_dir: Path, status: dict) -> None:
    ui.show_message("dv_message")
    if status.get("state") in ACTIVE_STATES:
        live_pass(ws, job_dir)
    else:
        pass_card(ws, job_dir, status)


# ---------------------------------------------------------------- 3 · the student

def student_form(ws: Path, job_dir: Path, summary: dict) -> None:
    task, kept = summary.get("task") or "classification", summary["kept"]
    c = st.columns(4)
    model = c[0].text_input("Student model", value=BUNDLED_MODEL, key="dv_student_model",
                            help="The smaller model that learns the task: the bundled one, a Hugging Face id or a "
                                 "local folder.").strip() or BUNDLED_MODEL
    batch = c[1].selectbox("Batch size", BATCH_SIZES, index=3, key="dv_student_batch")
    recommended, why = recommend_steps(task, max(1, kept), int(batch))
    steps = c[2].number_input("Steps", 1, 100_000, value=recommended, step=10,
                              key=f"dv_student_steps::{job_dir.name}::{kept}::{batch}",
                              help="Optimizer steps; the default follows the kept rows and the task.")
    multiplier = c[3].number_input("Learning rate multiplier", 0.01, 50.0, value=1.0, step=0.1, format="%.2f",
                                   key="dv_student_lr")
    c1, c2 = st.columns([3, 2])
    with c1:
        eval_path = ui.pick_dataset("Eval data (optional)", key="dv_student_eval", optional=True,
                                    none_label="None: hold out a slice of the kept rows",
                                    help="Labeled rows for the eval loss curve and the best checkpoint.")
    name = c2.text_input("Run name (optional)", key="dv_student_name")
    learns = ANSWER_ONLY
    if summary.get("rationale"):
        learns = st.radio("The student learns", list(LEARNS), format_func=LEARNS.get, horizontal=True,
                          key=f"dv_student_learns::{job_dir.name}",
                          help="Rationale + answer: besides prompt → answer, an “Explain …” prompt → the teacher's "
                               "rationale, rendered through the student's template; its answer to the normal prompt "
                               "stays the answer alone, so evaluation scores it as usual.")
    rate = base_learning_rate("sft", parameter_estimate(model, ws))
    st.caption(f":material/info: {kept} kept teacher answers. {why} Learning rate: {multiplier:g} × {rate:g} "
               f"= {multiplier * rate:.3g}.")
    if kept < MIN_EXAMPLES:
        st.warning(f"A student needs at least {MIN_EXAMPLES} kept rows; this review keeps {kept}. Keep more rows "
                   "above, or answer more prompts.", icon=":material/warning:")
        return
    if st.button("Start the student run", type="primary", icon=":material/model_training:", key="dv_student_start"):
        teacher = (runs.read_json(job_dir / TEACHER_FILE, {}) or {}).get("teacher") or job_dir.name
        try:
            run_dir, why = create_student(ws, job_dir, model=model, eval_file=eval_path, steps=int(steps),
                                          learns=learns,
                                          learning_rate_multiplier=float(multiplier), batch_size=int(batch),
                                          name=name.strip() or f"student of {Path(teacher).name}")
        except ValueError as e:  # DataError and ConfigError among them
            ui.show_request_error(e)
            return
        outcome = jobs.submit(run_dir)
        st.session_state["dv_student"] = run_dir.name  # the picker below is drawn after this
        st.success(f"Student run {'started' if outcome == 'started' else 'queued'}: {why}",
                   icon=":material/rocket_launch:")


def pick_student(ws: Path, job_dir: Path) -> str | None:
    """The students of this teacher pass (newest first), the chosen one's live card; returns its id."""
    students = students_of(ws, job_dir)
    if not students:
        return None
    ids = [s["run_id"] for s in students]
    ui.seed_choice("dv_student", ids, ids[0])
    names = {i: runs.display_name(runs.run_path(ws, i)) for i in ids}
    run_id = st.selectbox("Student run", ids, key="dv_student",
                          format_func=lambda i: f"{names[i]}  ·  {i}" if names[i] != i else i)
    run_dir = runs.run_path(ws, run_id)
    run_views.show_run(run_dir, runs.read_status(run_dir))
    return run_id
