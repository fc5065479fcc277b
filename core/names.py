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
JOB_KINDS = ("tune", "estimate", "evaluate", "candidates")
JOB_KIND_NAMES = {"tune": "Tuning", "estimate": "Speed trial", "evaluate": "Evaluation",
                  "candidates": "Candidate pairs"}
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL_STATES = ("succeeded", "failed", "cancelled")
ACTIVE_STATES = ("queued", "running")

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
EVALS_DIR = "evals"
EVAL_METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.jsonl"

# A labeling queue's name (core.preferences), also checked where a job names one.
QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")

# Folders of the workspace.
RUNS_DIR = "runs"
ESTIMATES_DIR = "estimates"
JOBS_DIR = "jobs"
QUEUE_FILE = "queue.json"
