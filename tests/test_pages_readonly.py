"""Drawing a page never starts, reaps, converts or deletes anything: every page rendered over a
workspace with runs in every state, a dead worker, waiting jobs of several kinds, evaluations, a
finished speed trial, registered data and labeled pairs leaves every file as it was."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from conftest import ASSETS, open_page
from core import catalog, jobs, preferences, runs
from core.config import CandidatesConfig, EvalConfig, TuneConfig
from core.templates import default_template

LABELS = ["games", "mail", "science"]
PAGES = ("datasets", "tune", "distill", "playground", "evaluate", "embeddings", "images", "sql", "runs", "preferences")


def snapshot(ws: Path) -> dict[str, tuple[int, str]]:
    """Every file under the workspace: mtime and content hash."""
    return {str(p.relative_to(ws)): (p.stat().st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest())
            for p in sorted(ws.rglob("*")) if p.is_file()}


def tune_run(ws: Path, name: str, state: str, **status) -> Path:
    cfg = TuneConfig(task="classification", train_file=str(ASSETS / "classification_train.jsonl"),
                     eval_file=str(ASSETS / "classification_eval.jsonl"), labels=LABELS, max_iterations=8,
                     template=default_template("classification", LABELS), name=name, device="cpu",
                     input_column="input_text", output_column="output_text")
    run_dir = jobs.create_tune(ws, cfg)
    for step in range(1, 5):
        runs.append_metrics(run_dir, {"step": step, "time": 2.0 * step, "loss": 3.0 - step / 4, "tokens_per_s": 90.0})
    runs.append_metrics(run_dir, {"step": 4, "eval_loss": 2.4})
    runs.update_status(run_dir, state=state, step=4, **status)
    return run_dir


def busy_workspace(ws: Path) -> None:
    done = tune_run(ws, "finished", "succeeded", started="2026-01-01T10:00:00+00:00",
                    finished="2026-01-01T10:01:00+00:00")
    (done / "adapter").mkdir()
    (done / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    # A worker that vanished without a word: the pages must show it failed, not write it.
    tune_run(ws, "vanished", "running", pid=2 ** 22 + 4321, heartbeat_ts=0)
    tune_run(ws, "failed", "failed", error="RuntimeError: boom", hint="Try again.")
    # Jobs of three kinds waiting behind a running one (their worker is this test process: alive).
    tune_run(ws, "training now", "running", pid=os.getpid(), heartbeat_ts=9e9)
    waiting = [tune_run(ws, "next run", "queued"),
               jobs.create_evaluation(ws, EvalConfig(data=str(ASSETS / "classification_eval.jsonl"),
                                                     task="classification", run_id=done.name, limit=5)),
               jobs.create_candidates(ws, CandidatesConfig(prompts=str(ASSETS / "classification_eval.jsonl"),
                                                           queue="q"))]
    runs.write_json(ws / "queue.json", {"waiting": [{"job": str(w.relative_to(ws)), "device": "cpu"} for w in waiting],
                                        "started": []})
    dead_eval = jobs.create_evaluation(ws, EvalConfig(data=str(ASSETS / "summarization_eval.jsonl"),
                                                      task="summarization", limit=3))
    runs.update_status(dead_eval, state="running", pid=2 ** 22 + 4322, heartbeat_ts=0, done=1, total=3)
    trial = jobs.create_estimate(ws, TuneConfig.from_dict(runs.read_json(done / "config.json")))
    runs.update_status(trial, state="succeeded", eval_rows=40)
    (trial / "adapter").mkdir()  # a trial's leftovers are its worker's to remove, not a page's
    catalog.register_dataset(ws, ASSETS / "classification_train.jsonl", "sections")
    preferences.create_queue(ws, "q")
    preferences.add_pairs(ws, "q", [{"prompt": "p", "answer_a": "a", "answer_b": "b"}])


def test_rendering_every_page_leaves_the_workspace_unchanged(ws):
    busy_workspace(ws)
    before = snapshot(ws)
    for page in PAGES:
        at = open_page(page)
        assert not at.exception, (page, [e.value for e in at.exception])
        at.run()  # and drawn again, as the live panels do
        assert not at.exception, (page, [e.value for e in at.exception])
    at = open_page("preferences")
    at.text_input(key="pf_name").set_value("ann").run()  # a labeler sees the next pair: still a read
    at = open_page("tune")
    at.radio(key="tune_method").set_value("dpo").run()  # DPO lists the labeling queues and their pairs
    assert not at.exception, [e.value for e in at.exception]
    assert snapshot(ws) == before
    assert runs.read_json(ws / "runs" / next(d.name for d in (ws / "runs").iterdir()
                                              if runs.read_status(d).get("name") == "vanished") / "status.json"
                          )["state"] == "running"  # shown as failed, written by nobody but the queue


def test_an_empty_workspace_stays_empty(ws):
    for page in PAGES:
        assert not open_page(page).exception
    assert snapshot(ws) == {}
