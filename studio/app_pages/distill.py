"""Distill: a bigger or better-tuned model (the teacher) answers your unlabeled prompts, you review what it
wrote, a smaller model (the student) is tuned on the kept answers, and the three (teacher, student, and the
student before tuning) are compared on an eval set with their speed and size. Four steps on one page; the
widgets live in studio/distill_views.py, distill_review_views.py and distill_compare_views.py."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import jobs, runs
from core.distill_review import review
from studio import cached, distill_compare_views, distill_review_views, distill_views, ui

st.title("Distill")
st.caption("A teacher model labels your prompts; a student learns to do the task alone, and is cheaper and "
           "faster to run. Start from unlabeled prompts, labeled rows, or both.")
ws = cached.workspace()

with st.container(border=True):
    st.subheader("1 · Teacher pass")
    st.caption("The teacher answers every row in the background (closing the browser does not stop it). For "
               "classification its answer is the best-scoring label, so it is always one of the label set.")
    passes = jobs.list_jobs(ws, "teacher_pass")
    with st.expander("New teacher pass", icon=":material/add:", expanded=not passes):
        distill_views.teacher_form(ws)
    passes = jobs.list_jobs(ws, "teacher_pass")  # a pass started just now is listed too
    job_dir = None
    if passes:
        by_id = {j["id"]: j for j in passes}
        ui.seed_choice("dv_pass", list(by_id), passes[0]["id"])
        chosen = st.selectbox("Teacher pass", list(by_id), key="dv_pass",
                              format_func=lambda i: distill_views.pass_label(by_id[i]))
        job_dir = Path(by_id[chosen]["dir"])
        distill_views.show_pass(ws, job_dir, runs.read_status(job_dir))

summary = review(job_dir) if job_dir is not None else None
with st.container(border=True):
    st.subheader("2 · Review the teacher's answers")
    if summary is None:
        st.caption("Start a teacher pass above; its answers appear here for review.")
    elif not summary["rows"]:
        st.caption("The teacher's answers appear here as they come in.")
    else:
        distill_review_views.review_step(ws, job_dir, summary)

student_id = None
with st.container(border=True):
    st.subheader("3 · Student")
    if job_dir is None:
        st.caption("The student learns from a finished teacher pass.")
    else:
        if runs.read_status(job_dir).get("state") == "succeeded":
            distill_views.student_form(ws, job_dir, review(job_dir))  # the review as it stands after the step above
        else:
            st.caption("The student learns from a finished teacher pass; a stopped one can be resumed above.")
        student_id = distill_views.pick_student(ws, job_dir)

with st.container(border=True):
    st.subheader("4 · Compare")
    st.caption("Teacher, student and the student before tuning answer the same eval rows: the Evaluate page's "
               "dashboards for all three, and the student's speed and size next to the teacher's.")
    distill_compare_views.compare_step(ws, student_id)
