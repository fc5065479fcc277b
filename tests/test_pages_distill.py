"""The Distill page through the real navigation: with nothing in the workspace, with a finished teacher
pass (the review table, its filters, a dropped row that stays dropped, a row sent to a labeling queue),
and with a finished comparison (teacher, student and student-before with their metrics, per-class F1,
speed and size). No model is loaded: the pass's answers and the evaluations are written by hand in the
formats core writes (core.distill_teacher, core.evaluate)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from conftest import open_page, write_jsonl
from safetensors.numpy import save_file
from test_pages_readonly import snapshot

from core import jobs, preferences, runs
from core.config import BUNDLED_MODEL, TeacherPassConfig, TuneConfig
from core.distill_compare import start_comparison
from core.distill_review import read_review
from core.evaluate import task_metrics
from core.names import EVAL_METRICS_FILE
from core.templates import default_template

LABELS = ["games", "mail", "science"]
PROMPTS = [f"package {i}: a tool for {LABELS[i % 3]}" for i in range(12)]


def finished_pass(ws: Path) -> Path:
    """A teacher pass over 12 prompts and 3 labeled rows: row 3 failed, row 9 repeats row 0's prompt, row 13
    disagrees with its given label, row 7 has a low margin."""
    prompts = write_jsonl(ws / "prompts.jsonl", [{"input_text": p} for p in PROMPTS])
    job_dir = jobs.create_teacher_pass(ws, TeacherPassConfig(teacher=BUNDLED_MODEL, prompts=str(prompts),
                                                             labels=LABELS, device="cpu"))
    runs.write_json(job_dir / "teacher.json", {"teacher": BUNDLED_MODEL, "teacher_model": BUNDLED_MODEL,
                                               "teacher_run": None, "task": "classification", "labels": LABELS,
                                               "template": default_template("classification", LABELS), "rows": 15})
    lines = []
    for i in range(15):
        labeled = i >= 12
        prompt = PROMPTS[0] if i == 9 else f"labeled {i}" if labeled else PROMPTS[i]
        line = {"row": i, "source": "labeled" if labeled else "prompts", "line": i % 12 + 1, "prompt": prompt,
                "given": ("games" if i == 13 else LABELS[i % 3]) if labeled else None, "answer": LABELS[i % 3],
                "margin": 0.1 if i == 7 else 2.0, "runner_up": LABELS[(i + 1) % 3], "status": "ok", "error": None}
        if i == 3:
            line.update(answer=None, margin=None, runner_up=None, status="failed", error="RuntimeError: out of memory")
        lines.append(line)
    runs.write_jsonl(job_dir / "answers.jsonl", lines)
    runs.update_status(job_dir, state="succeeded", done=15, total=15, rows_ok=14, rows_failed=1)
    return job_dir


def tuned_run(ws: Path, name: str, **config) -> Path:
    cfg = TuneConfig(task="classification", train_file=str(ws / "prompts.jsonl"), labels=LABELS, name=name,
                     template=default_template("classification", LABELS), max_iterations=4, **config)
    run_dir = jobs.create_tune(ws, cfg)
    runs.update_status(run_dir, state="succeeded", step=4, max_steps=4)
    (run_dir / "adapter").mkdir()
    save_file({"a.lora_A.weight": np.zeros((8, 576), np.float32), "a.lora_B.weight": np.zeros((576, 8), np.float32)},
              str(run_dir / "adapter" / "adapter_model.safetensors"))
    return run_dir


def scored(out_dir: Path, blocks: dict[str, list[str]], refs: list[str], seconds: float) -> None:
    """metrics.json of a finished evaluation, as core.evaluate writes it, from hand-made answers."""
    result = {name: task_metrics("classification", refs, answers, LABELS) for name, answers in blocks.items()}
    runs.write_json(out_dir / EVAL_METRICS_FILE, {
        "task": "classification", "data": "eval.jsonl", "rows": len(refs), "mode": "score", "labels": LABELS,
        "generation_seconds": seconds, "rows_per_second": round(len(blocks) * len(refs) / seconds, 3), **result})
    runs.update_status(out_dir, state="succeeded", done=len(blocks) * len(refs), total=len(blocks) * len(refs),
                       peak_memory_mb=900)


def finished_comparison(ws: Path, job_dir: Path) -> tuple[Path, dict]:
    teacher = tuned_run(ws, "teacher run")
    student = tuned_run(ws, "the student", distilled_from={
        "teacher": f"run:{teacher.name}", "teacher_model": BUNDLED_MODEL, "teacher_run": teacher.name,
        "teacher_pass": job_dir.name, "kept": 13})
    refs = ["games", "mail", "science", "games", "mail", "science"]
    eval_file = write_jsonl(ws / "eval.jsonl", [{"input_text": f"eval {i}", "output_text": r} for i, r in enumerate(refs)])
    entry = start_comparison(ws, student.name, eval_file, limit=6, submit=False)
    scored(ws / entry["evaluations"]["student"], {
        "base": ["games", "games", "games", "games", "games", "games"],        # before: always games
        "tuned": ["games", "mail", "science", "games", "mail", "games"]}, refs, seconds=3.0)  # student: 5 of 6
    scored(ws / entry["evaluations"]["teacher"], {"tuned": refs}, refs, seconds=6.0)  # teacher: all right, slower
    return student, entry


def review_keys(job_dir: Path) -> dict[str, str]:
    return {k: f"dv_{k}::{job_dir.name}" for k in ("filter", "rows", "drop", "keep", "rule", "send", "queue",
                                                     "decision")}


def test_page_without_any_work_shows_the_four_steps(ws):
    at = open_page("distill")
    assert at.title[0].value == "Distill"
    assert [s.value for s in at.subheader] == ["1 · Teacher pass", "2 · Review the teacher's answers", "3 · Student",
                                               "4 · Compare"]
    start = at.button(key="dv_start")
    assert start.disabled  # nothing to answer yet
    assert any("Start a teacher pass above" in c.value for c in at.caption)
    assert snapshot(ws) == {}


def test_a_classification_pass_without_labels_is_refused_before_anything_is_queued(ws):
    write_jsonl(ws / "prompts.jsonl", [{"input_text": p} for p in PROMPTS])
    at = open_page("distill")
    at.radio(key="dv_prompts_from").set_value("path").run()
    at.text_input(key="dv_prompts_path").set_value(str(ws / "prompts.jsonl")).run()
    at.button(key="dv_start").click().run()
    assert not at.exception
    assert any("label set" in e.value for e in at.error)
    assert not (ws / "distill").exists()


def test_review_filters_drops_and_sends_rows(ws):
    job_dir = finished_pass(ws)
    keys = review_keys(job_dir)
    before = snapshot(ws)
    at = open_page("distill")
    assert not at.exception
    assert snapshot(ws) == before  # drawing the page writes nothing
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Answered rows"] == "15" and metrics["Failed"] == "1"
    assert metrics["Kept for the student"] == "14" and metrics["Dropped"] == "1"  # the failed row
    table = at.dataframe[0].value
    assert list(table["row"]) == list(range(15))
    assert table.set_index("row").loc[3, "decision"] == "Dropped" and "failed" in table.set_index("row").loc[3, "flags"]

    # Filters: flagged rows only, then by decision.
    at.button_group(key=keys["filter"]).set_value(["disagrees"]).run()
    assert list(at.dataframe[0].value["row"]) == [13]
    at.button_group(key=keys["filter"]).set_value(["low_margin", "duplicate_prompt"]).run()
    assert list(at.dataframe[0].value["row"]) == [7, 9]
    at.button_group(key=keys["filter"]).set_value([]).run()
    at.button_group(key=keys["decision"]).set_value("drop").run()
    assert list(at.dataframe[0].value["row"]) == [3]
    at.button_group(key=keys["decision"]).set_value("all").run()

    # Drop a row: stored in review.json, and still dropped when the page is opened again.
    at.multiselect(key=keys["rows"]).set_value([9]).run()
    at.button(key=keys["drop"]).click().run()
    assert not at.exception
    assert read_review(job_dir)["decisions"] == {9: "drop"}
    assert any("1 row dropped" in s.value for s in at.success)
    again = open_page("distill")
    assert again.dataframe[0].value.set_index("row").loc[9, "decision"] == "Dropped"
    assert {m.label: m.value for m in again.metric}["Kept for the student"] == "13"

    # The rule: rows with a low margin are dropped too.
    again.multiselect(key=keys["rule"]).set_value(["off_label", "low_margin"]).run()
    assert "low_margin" in read_review(job_dir)["drop_flags"]
    assert again.dataframe[0].value.set_index("row").loc[7, "decision"] == "Dropped"

    # A doubtful row goes to a labeling queue as a pair, and waits there.
    again.multiselect(key=keys["rows"]).set_value([13]).run()
    again.text_input(key=f"{keys['queue']}_new").set_value("doubts").run()
    again.button(key=keys["send"]).click().run()
    assert not again.exception
    assert read_review(job_dir)["sent"][13]["queue"] == "doubts"
    item = preferences.next_item(ws, "doubts", "ann")
    assert item["prompt"] == "labeled 13" and {item["first"], item["second"]} == {"games", "mail"}
    assert again.dataframe[0].value.set_index("row").loc[13, "decision"] == "Waiting for a label"


def test_student_step_offers_the_recommended_steps_for_the_kept_rows(ws):
    finished_pass(ws)
    at = open_page("distill")
    steps = next(n for n in at.number_input if n.label == "Steps")
    assert steps.value == 50  # 14 kept rows: one pass is 2 steps, classification's range starts at 50
    assert any("14 kept teacher answers" in c.value for c in at.caption)
    assert any(b.label == "Start the student run" for b in at.button)


def test_a_finished_comparison_shows_teacher_student_and_student_before(ws):
    job_dir = finished_pass(ws)
    student, entry = finished_comparison(ws, job_dir)
    before = snapshot(ws)
    at = open_page("distill")
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="dv_student").value == student.name
    cards = {m.label: m for m in at.metric}
    assert cards["Teacher · Macro F1"].value == "100.0%"
    assert cards["Before tuning · Macro F1"].value == "16.7%"  # games only: F1 0.5 on one class of 3
    student_card = cards["Student · Macro F1"]
    assert student_card.value == "82.2%" and student_card.delta == "-17.8 pts vs teacher"
    assert cards["Student speed"].value == "4.00× teacher"  # 12 answers in 3 s (4/s) against 6 in 6 s (1/s)

    tables = [d.value for d in at.dataframe]
    quality = next(t for t in tables if "Macro F1" in t.columns)
    assert list(quality["model"]) == ["Teacher", "Student", "Student before tuning"]
    assert list(quality["rows answered"]) == [6, 6, 6]
    size = next(t for t in tables if "answers/s" in t.columns).set_index("model")
    assert size.loc["Teacher", "answers/s"] == "1.00" and size.loc["Student", "answers/s"] == "4.00"
    assert size.loc["Student", "parameters"] == "134.5M + 9.2k adapter"  # the bundled model and the adapter file
    assert size.loc["Student before tuning", "parameters"] == "134.5M"
    assert size.loc["Teacher", "peak memory"] == "900 MB"
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    heatmap = next(s for s in specs if any(t.get("type") == "heatmap" and t.get("x") == ["Teacher", "Student", "Before"]
                                           for t in s["data"]))
    f1 = next(t for t in heatmap["data"] if t.get("x") == ["Teacher", "Student", "Before"])
    assert f1["y"] == LABELS and f1["z"][0] == [1.0, 0.8, 0.5]  # games: teacher, student (4/5), before
    assert snapshot(ws) == before

    # A second comparison waiting in the queue: listed, and its progress shown instead of the results.
    start_comparison(ws, student.name, ws / "eval.jsonl", limit=3, submit=False)
    at = open_page("distill")
    assert not at.exception
    assert len(at.selectbox(key=f"dv_cmp_pick::{student.name}").options) == 2
    assert [p.text for p in at.get("progress")][-2:] == ["Student and student-before: loading the model…",
                                                         "Teacher: loading the model…"]
    at.selectbox(key=f"dv_cmp_pick::{student.name}").set_value(entry["id"]).run()
    assert any(m.label == "Student · Macro F1" for m in at.metric)


def test_a_running_pass_shows_its_progress_and_can_be_cancelled(ws):
    job_dir = finished_pass(ws)
    lines = runs.read_jsonl(job_dir / "answers.jsonl")[:6]  # 6 of 15 answered so far, row 3 failed
    runs.write_jsonl(job_dir / "answers.jsonl", lines)
    runs.update_status(job_dir, state="running", done=6, total=15, pid=os.getpid(), heartbeat_ts=9e9)
    at = open_page("distill")
    assert not at.exception, [e.value for e in at.exception]
    progress = at.get("progress")[0]
    assert progress.text == "6 of 15 rows answered · 1 failed" and progress.value == 40
    assert {m.label: m.value for m in at.metric}["Answered"] == "5"
    assert len(at.dataframe[0].value) == 6  # the answers so far can be reviewed already
    assert any("finished teacher pass" in c.value for c in at.caption)  # no student yet
    at.button(key=f"dv_cancel::{job_dir.name}").click().run()
    assert not at.exception
    assert jobs.cancel_requested(job_dir)


def test_a_pass_with_rationales_shows_them_and_offers_what_the_student_learns(ws):
    job_dir = finished_pass(ws)
    runs.write_json(job_dir / "teacher.json", {**runs.read_json(job_dir / "teacher.json"), "rationale": True})
    lines = runs.read_jsonl(job_dir / "answers.jsonl")
    for line in lines:  # row 5's rationale came out empty; the failed row 3 has no answer to explain
        text = None if line["row"] in (3, 5) else f"it is about {line['answer']}"
        error = {3: "no answer to explain", 5: "empty: the teacher wrote no rationale"}.get(line["row"])
        line.update(rationale=text, rationale_error=error)
    runs.write_jsonl(job_dir / "answers.jsonl", lines)
    keys = review_keys(job_dir)
    at = open_page("distill")
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value.set_index("row")
    assert table.loc[0, "rationale"] == "it is about games"
    assert table.loc[5, "rationale"] == "(empty: the teacher wrote no rationale)"
    assert "no rationale" in table.loc[5, "flags"] and table.loc[5, "decision"] == "Kept"
    at.button_group(key=keys["filter"]).set_value(["no_rationale"]).run()
    assert list(at.dataframe[0].value["row"]) == [5]  # the failed row is flagged failed, not this
    assert any("Rationales: 13 of 14 answered rows" in c.value for c in at.caption)
    learns = at.radio(key=f"dv_student_learns::{job_dir.name}")
    assert learns.value == "rationale_and_answer" and learns.options == ["Rationale + answer (two tasks)",
                                                                         "Answer only"]
    assert at.checkbox(key="dv_rationale").value is False  # the new-pass form: asking is a choice


def test_a_pass_without_rationales_offers_no_rationale_filter_nor_column(ws):
    job_dir = finished_pass(ws)
    at = open_page("distill")
    assert "rationale" not in at.dataframe[0].value.columns
    assert not any("rationale" in str(o) for o in at.button_group(key=review_keys(job_dir)["filter"]).options)
    assert not [r for r in at.radio if r.key == f"dv_student_learns::{job_dir.name}"]
