"""Distillation on the tiny model: the teacher pass answers every row or marks it failed, resumes without
answering finished rows again, the review's decisions are stored, and the student is a normal run whose
training rows are exactly the kept teacher answers, through the student's own template."""
import hashlib
import json

import pytest
import torch
from conftest import write_jsonl
from test_train import tiny_config

from core import distill_teacher, jobs, preferences, runs
from core.cli import main
from core.config import TeacherPassConfig, TuneConfig
from core.distill_review import apply_queue_labels, decide, review, send_to_queue
from core.distill_student import create_student, students_of
from core.models import load_tokenizer
from core.templates import render_answer, render_prompt
from core.train import build_examples
from core.worker import run_job

LABELS = ["games", "math"]
FAILS = "FAIL-ME"  # a prompt holding this cannot be answered (see failing_teacher)


@pytest.fixture
def distill_data(tiny_classification, tmp_path):
    """12 prompts without labels (one repeated, one the teacher fails on) and 6 labeled rows."""
    train, ev = tiny_classification
    rows = [json.loads(x) for x in train.read_text().splitlines()]
    prompts = [{"input_text": r["input_text"]} for r in rows[:10]]
    prompts += [prompts[0], {"input_text": f"{FAILS} {rows[0]['input_text']}"}]
    return (write_jsonl(tmp_path / "prompts.jsonl", prompts), write_jsonl(tmp_path / "labeled.jsonl", rows[10:16]), ev)


def teacher_calls(monkeypatch, fail: str | None = None, on_call=None) -> list[list[str]]:
    """The prompts of every label-scoring call the teacher makes; a batch holding `fail` raises."""
    calls, real = [], distill_teacher.score_labels

    def scoring(model, tokenizer, prompts, labels, **kw):
        calls.append(list(prompts))
        if on_call:
            on_call(len(calls))
        if fail and any(fail in p for p in prompts):
            raise RuntimeError("CUDA out of memory (forced for the test)")
        return real(model, tokenizer, prompts, labels, **kw)

    monkeypatch.setattr(distill_teacher, "score_labels", scoring)
    return calls


def test_teacher_pass_labels_every_row_or_marks_it_failed(workspace, tiny_model_dir, distill_data, monkeypatch):
    prompts, labeled, _ = distill_data
    teacher_calls(monkeypatch, fail=FAILS)
    cfg = TeacherPassConfig(teacher=str(tiny_model_dir), prompts=str(prompts), labeled=str(labeled), batch_size=4,
                            device="cpu")
    job_dir = jobs.create_teacher_pass(workspace, cfg)
    assert runs.read_json(job_dir / "job.json")["kind"] == "teacher_pass"
    assert [j["id"] for j in jobs.list_jobs(workspace, "teacher_pass")] == [job_dir.name]
    run_job(job_dir)  # as the worker runs it
    status = runs.read_status(job_dir)
    assert status["state"] == "succeeded" and status["done"] == status["total"] == 18
    assert (status["rows_ok"], status["rows_failed"]) == (17, 1)

    answers = distill_teacher.read_answers(job_dir)
    assert sorted(answers) == list(range(18))
    failed = [r for r in answers.values() if r["status"] == "failed"]
    assert len(failed) == 1 and FAILS in failed[0]["prompt"] and failed[0]["answer"] is None
    assert "out of memory" in failed[0]["error"]  # its batch failed, then it alone: neighbours are answered
    ok = [r for r in answers.values() if r["status"] == "ok"]
    assert all(r["answer"] in LABELS and r["margin"] >= 0 and r["runner_up"] in LABELS for r in ok)
    given = [json.loads(x)["output_text"] for x in labeled.read_text().splitlines()]
    assert [answers[i]["given"] for i in range(12, 18)] == given and answers[0]["given"] is None

    summary = review(job_dir)
    disagree = sum(answers[i]["answer"] != answers[i]["given"] for i in range(12, 18))
    assert summary["counts"]["failed"] == 1 and summary["counts"]["duplicate_prompt"] == 1
    assert summary["counts"]["disagrees"] == disagree and summary["counts"]["off_label"] == 0
    assert (summary["kept"], summary["dropped"]) == (17, 1)

    # Decisions are stored in the pass's folder; a row without an answer cannot be kept.
    with pytest.raises(ValueError, match="cannot be kept"):
        decide(job_dir, decisions={failed[0]["row"]: "keep"})
    assert decide(job_dir, decisions={0: "drop"})["kept"] == 16
    assert runs.read_json(job_dir / "review.json")["decisions"] == {"0": "drop"}

    # A doubtful row goes to a labeling queue as a pair (teacher's label vs the runner-up), waits there,
    # and the label given settles its training answer.
    assert send_to_queue(workspace, job_dir, [1], "doubts") == 1
    assert review(job_dir)["waiting"] == 1
    item = preferences.next_item(workspace, "doubts", "ann")
    assert item["prompt"] == answers[1]["prompt"] and {item["first"], item["second"]} == set(LABELS)
    preferences.adjudicate(workspace, item["id"], "b", "ann")  # b: the runner-up label
    assert apply_queue_labels(workspace, job_dir) == 1
    row = review(job_dir)["rows"][1]
    assert row["decision"] == "keep" and row["training_answer"] == answers[1]["runner_up"]


def test_resume_after_a_stop_does_not_answer_finished_rows_again(workspace, tiny_model_dir, distill_data,
                                                                 monkeypatch):
    prompts, labeled, _ = distill_data
    cfg = TeacherPassConfig(teacher=str(tiny_model_dir), prompts=str(prompts), labeled=str(labeled), batch_size=1,
                            device="cpu")
    job_dir = jobs.create_teacher_pass(workspace, cfg)
    # A stop request during the first write: the worker's progress callback raises after that write.
    calls = teacher_calls(monkeypatch, on_call=lambda n: n == 1 and jobs.cancel(job_dir))
    run_job(job_dir)
    assert runs.read_status(job_dir)["state"] == "cancelled"
    first = distill_teacher.read_answers(job_dir)
    per_write = cfg.batch_size * distill_teacher.BATCHES_PER_WRITE
    assert len(first) == per_write and len(calls) == 1 and len(calls[0]) == per_write

    (job_dir / "cancel").unlink()  # what jobs.resume does before queueing it again
    run_job(job_dir)
    assert runs.read_status(job_dir)["state"] == "succeeded"
    asked = [p for call in calls[1:] for p in call]
    assert len(asked) == 18 - per_write  # only the rows not answered before
    lines = runs.read_jsonl(job_dir / "answers.jsonl")
    assert sorted(r["row"] for r in lines) == list(range(18))  # one line a row: none answered twice
    assert all(distill_teacher.read_answers(job_dir)[i] == r for i, r in first.items())


def test_student_learns_exactly_the_kept_answers_and_the_teacher_is_untouched(workspace, tiny_model_dir,
                                                                              tiny_classification, distill_data):
    prompts, _, ev = distill_data
    teacher_run = jobs.create_tune(workspace, TuneConfig.from_dict(
        tiny_config(tiny_model_dir, *tiny_classification, steps=2, eval_every=2)))
    run_job(teacher_run)
    def files(how):
        return {p.name: how(p) for p in (teacher_run / "adapter").iterdir() if p.is_file()}

    adapter = files(lambda p: hashlib.sha256(p.read_bytes()).hexdigest())
    mtimes = files(lambda p: p.stat().st_mtime_ns)

    # The label set and the template come from the teacher run.
    job_dir = jobs.create_teacher_pass(workspace, TeacherPassConfig(teacher=f"run:{teacher_run.name}",
                                                                    prompts=str(prompts), device="cpu"))
    run_job(job_dir)
    teacher = runs.read_json(job_dir / "teacher.json")
    assert teacher["labels"] == LABELS and teacher["template"] == runs.read_json(teacher_run / "config.json")["template"]
    decide(job_dir, decisions={3: "drop"})
    kept = [r for r in review(job_dir)["rows"] if r["decision"] == "keep"]
    assert {r["row"] for r in review(job_dir)["rows"]} == set(range(12))  # nothing fails here
    assert len(kept) == 11 and 3 not in [r["row"] for r in kept]

    run_dir, _ = create_student(workspace, job_dir, model=str(tiny_model_dir), eval_file=str(ev), steps=3,
                                eval_every=3, batch_size=4, template="Topic of this package: {input_text}",
                                device="cpu")
    cfg = TuneConfig.from_dict(runs.read_json(run_dir / "config.json"))
    assert cfg.distilled_from["teacher"] == f"run:{teacher_run.name}"
    assert cfg.distilled_from["teacher_pass"] == job_dir.name and cfg.distilled_from["kept"] == 11
    assert cfg.labels == LABELS and cfg.model == str(tiny_model_dir)
    tokenizer = load_tokenizer(str(tiny_model_dir))
    rows, _ = build_examples(cfg, tokenizer)  # what the trainer will learn, exactly
    assert rows == [{"prompt": render_prompt(tokenizer, "Topic of this package: {input_text}", r["prompt"]),
                     "completion": render_answer(tokenizer, r["answer"])} for r in kept]

    model = run_job(run_dir)
    assert runs.read_status(run_dir)["state"] == "succeeded", runs.log_tail(run_dir)
    lora_b = [v for k, v in model.state_dict().items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b) and all(torch.isfinite(v).all() for v in lora_b)
    assert files(lambda p: hashlib.sha256(p.read_bytes()).hexdigest()) == adapter  # the teacher is untouched
    assert files(lambda p: p.stat().st_mtime_ns) == mtimes
    assert students_of(workspace, job_dir) == [{"run_id": run_dir.name, "state": "succeeded"}]


def test_text_task_teacher_generates_its_answers(workspace, tiny_model_dir, distill_data):
    prompts, _, _ = distill_data
    cfg = TeacherPassConfig(teacher=str(tiny_model_dir), prompts=str(prompts), task="summarization", limit=4,
                            max_output_tokens=4, device="cpu")
    job_dir = jobs.create_teacher_pass(workspace, cfg)
    counts = distill_teacher.run_teacher_pass(workspace, cfg, job_dir)
    assert counts == {"rows": 4, "ok": 4, "failed": 0, "answered_now": 4}
    answers = distill_teacher.read_answers(job_dir)
    assert all(isinstance(r["answer"], str) and r["margin"] is None for r in answers.values())


def test_cli_distill_end_to_end(workspace, tiny_model_dir, distill_data, capsys):
    prompts, labeled, ev = distill_data
    ws = ["--workspace", str(workspace)]
    code = main(["distill", "--teacher", str(tiny_model_dir), "--student", str(tiny_model_dir), "--prompts",
                 str(prompts), "--labels", str(labeled), "--steps", "2", "--eval", str(ev), "--batch-size", "4",
                 "--device", "cpu", "--wait", "--json", *ws])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and out["status"] == "succeeded", out
    assert out["counts"]["rows"] == 18 and out["counts"]["kept"] + out["counts"]["dropped"] == 18
    assert out["counts"]["flags"]["duplicate_prompt"] == 1
    cfg = runs.read_json(runs.run_path(workspace, out["run_id"]) / "config.json")
    assert cfg["distilled_from"]["teacher_pass"] == out["teacher_pass"] and cfg["labels"] == LABELS
    assert runs.read_json(workspace / "distill" / out["teacher_pass"] / "review.json")["drop_flags"] == \
        ["failed", "empty", "off_label"]

    # A second student from the same answers: no new teacher pass, every answered row kept.
    code = main(["distill", "--teacher-pass", out["teacher_pass"], "--student", str(tiny_model_dir), "--steps", "1",
                 "--keep-all", "--device", "cpu", "--wait", "--json", *ws])
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and again["status"] == "succeeded" and again["teacher_pass"] == out["teacher_pass"]
    assert len(list((workspace / "distill").iterdir())) == 1
    origin = runs.read_json(runs.run_path(workspace, again["run_id"]) / "config.json")["distilled_from"]
    assert origin["drop_flags"] == ["failed", "empty"] and origin["kept"] == 18
    assert {s["run_id"] for s in students_of(workspace, workspace / "distill" / out["teacher_pass"])} == \
        {out["run_id"], again["run_id"]}


def test_cli_refuses_a_classification_pass_without_labels(workspace, tiny_model_dir, distill_data, capsys):
    prompts, _, _ = distill_data
    code = main(["distill", "--teacher", str(tiny_model_dir), "--prompts", str(prompts), "--steps", "2",
                 "--workspace", str(workspace)])
    assert code == 2 and "label set" in capsys.readouterr().err
    assert not (workspace / "distill").exists()  # nothing was queued


def test_a_teacher_run_reads_prompts_within_its_tuned_length(workspace, tiny_model_dir, tiny_classification,
                                                              distill_data, monkeypatch):
    from core.generate import label_sequences

    prompts, _, _ = distill_data
    teacher_run = jobs.create_tune(workspace, TuneConfig.from_dict(
        tiny_config(tiny_model_dir, *tiny_classification, steps=1, eval_every=1)))
    run_job(teacher_run)
    config = runs.read_json(teacher_run / "config.json")
    tokenizer = load_tokenizer(str(tiny_model_dir))
    label_room = max(map(len, label_sequences(tokenizer, LABELS)))
    limit = len(tokenizer(render_prompt(tokenizer, config["template"], "")).input_ids) + 6 + label_room
    runs.write_json(teacher_run / "config.json", {**config, "max_seq_length": limit})
    calls = teacher_calls(monkeypatch)
    job_dir = jobs.create_teacher_pass(workspace, TeacherPassConfig(teacher=f"run:{teacher_run.name}",
                                                                    prompts=str(prompts), device="cpu"))
    run_job(job_dir)
    assert runs.read_status(job_dir)["state"] == "succeeded"
    scored = [p for call in calls for p in call if "Text:" in p and p.endswith("assistant\n")]
    assert scored and all(len(tokenizer(p).input_ids) <= limit - label_room for p in scored)
    # The rows themselves keep their whole text: the student learns from what the user gave.
    first = json.loads(prompts.read_text().splitlines()[0])["input_text"]
    assert distill_teacher.read_answers(job_dir)[0]["prompt"] == first
