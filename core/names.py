"""The one home of the studio's fixed names: tasks, methods, devices, job kinds and states, and the files
of a job folder. Everything else imports them from here, so a name is spelled once."""
from __future__ import annotations

import re

# What a tuning run learns; decides the default template and the metrics Evaluate shows.
TASKS = ("classification", "summarization", "text_generation")
# What an evaluation scores (the reference workflow's task types).
EVAL_TASKS = ("classification", "summarization", "question_answering", "text_generation")
TASK_NAMES = {"classification": "Classification", "summarization": "Summarization",
              "question_answering": "Question answering", "text_generation": "Text generation"}
METHODS = ("sft", "dpo")
METHOD_NAMES = {"sft": "Supervised", "dpo": "Preference (DPO)"}
DEVICES = ("auto", "cpu", "cuda", "mps")

# Every kind of background work is a job folder with job.json = {kind, config}; core.worker runs it.
JOB_KINDS = ("tune", "estimate", "evaluate", "candidates", "sql", "teacher_pass", "embed_tune", "export",
             "image_tune", "image_trial")
JOB_KIND_NAMES = {"tune": "Tuning", "estimate": "Speed trial", "evaluate": "Evaluation",
                  "candidates": "Candidate pairs", "sql": "SQL statement", "teacher_pass": "Teacher pass",
                  "embed_tune": "Embedding tuning", "export": "Export",
                  "image_tune": "Image tuning", "image_trial": "Image speed trial"}
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL_STATES = ("succeeded", "failed", "cancelled")
ACTIVE_STATES = ("queued", "running")
# What a listing shows for a folder whose status.json or config.json cannot be read.
UNREADABLE = "unreadable"

# The files of a job folder (a tuning run's folder is one), relative to it.
JOB_FILE = "job.json"
CONFIG_FILE = "config.json"          # a tuning run's TuneConfig (kept beside job.json: the run's contract)
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"
WORKER_LOG = "worker.log"
CANCEL_FILE = "cancel"
ADAPTER_DIR = "adapter"
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_PREFIX = "checkpoint-"
# Written into checkpoint-N/ after its last file: only such a checkpoint is resumed from.
CHECKPOINT_COMPLETE = "checkpoint-complete"
EVALS_DIR = "evals"
EVAL_METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.jsonl"
# A teacher pass's folder (distillation): one line per answered row, appended a few batches at a time
# (the last line of a row wins); what it was asked with; the review's keep/drop decisions; the training
# files of the student runs made from it.
TEACHER_ANSWERS_FILE = "answers.jsonl"
TEACHER_FILE = "teacher.json"
REVIEW_FILE = "review.json"
STUDENT_DATA_DIR = "student_data"
# In a student run's folder: its comparisons with the teacher and its own base model, each listing the
# evaluation jobs that score them (core.distill_compare).
DISTILL_COMPARE_FILE = "compare.json"
# A run's exports (core.export): runs/<id>/exports/<label>/, each a job folder with export.json at its end.
EXPORTS_DIR = "exports"
EXPORT_FILE = "export.json"

# Every name a user gives that becomes a key or a folder (datasets, run ids, labeling queues):
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
NAME_RULE = "letters, digits, '.', '-' and '_', starting with a letter or digit"


class InvalidName(ValueError):
    """A user-given name that cannot be used; the message says what is allowed."""


def check_name(value, what: str, max_len: int = 64) -> str:
    """The one rule for names (datasets, run ids, labeling queues …): never blank, no control characters,
    no path characters, so a name can never point outside its folder. fullmatch, not match with `$`,
    which would let a trailing newline through. Returns the name; raises InvalidName."""
    if not isinstance(value, str) or len(value) > max_len or not _NAME.fullmatch(value):
        shown = repr(value) if isinstance(value, str) and value.isprintable() is False else f"`{value}`"
        raise InvalidName(f"{what} {shown} is not a valid name: use {NAME_RULE}, up to {max_len} characters")
    return value

# Folders of the workspace.
RUNS_DIR = "runs"
ESTIMATES_DIR = "estimates"
JOBS_DIR = "jobs"
SQL_DIR = "sql"                      # the SQL workbench: its database, model names, history and jobs
SQL_JOBS_DIR = f"{SQL_DIR}/jobs"
DISTILL_DIR = "distill"              # teacher passes (distillation), one folder each
EMBED_DIR = "embeddings"             # embedding-model tuning jobs (core.embed), one folder each
IMAGES_DIR = "images"                # image-model (diffusion LoRA) tuning jobs (core.images), one folder each
IMAGE_TRIALS_DIR = f"{IMAGES_DIR}/trials"  # their speed trials
IMAGE_SETS_DIR = "image_sets"        # uploaded training images, one folder per set
QUEUE_FILE = "queue.json"
# Where each kind's job folders are, as globs relative to the workspace (core.jobs creates them there).
JOB_FOLDERS = {"tune": (f"{RUNS_DIR}/*",), "estimate": (f"{ESTIMATES_DIR}/*",),
               "evaluate": (f"{RUNS_DIR}/*/{EVALS_DIR}/*", f"{EVALS_DIR}/*"), "candidates": (f"{JOBS_DIR}/*",),
               "sql": (f"{SQL_JOBS_DIR}/*",), "teacher_pass": (f"{DISTILL_DIR}/*",),
               "embed_tune": (f"{EMBED_DIR}/*",), "export": (f"{RUNS_DIR}/*/{EXPORTS_DIR}/*",),
               "image_tune": (f"{IMAGES_DIR}/*",), "image_trial": (f"{IMAGE_TRIALS_DIR}/*",)}
