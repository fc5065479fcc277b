"""Rationales ("distilling step-by-step") on the tiny model: the teacher explains each of its answers, each
row records its rationale or why it has none, a resumed pass does not ask finished rows again, and a
student learns exactly the kept labels plus the rationale-task rows, both through its own template, while
its answer to the normal prompt stays the label alone (evaluation's label scoring works unchanged)."""
import json
import re
from collections import Counter

import pytest
from conftest import write_jsonl
from test_distill import FAILS, LABELS, teacher_calls

from core import distill_rationale, distill_teacher, jobs, runs
from core.cli import main
from core.config import ConfigError, EvalConfig, TeacherPassConfig, TuneConfig
from core.distill_review import review
from core.distill_student import ANSWER_ONLY, RATIONALE_AND_ANSWER, create_student
from core.evaluate import run_evaluation
from core.models import load_tokenizer
from core.templates import render_answer, render_chat_prompt, render_prompt
from core.train import build_examples
from core.worker import run_job

TEMPLATE = "Topic of this package: {input_text}"


@pytest.fixture
def distill_data(tiny_classification, tmp_path):
    """As test_distill's: 12 prompts without labels (row 10 repeats row 0, row 11 holds FAILS), 6 labeled rows."""
    train, ev = tiny_classification
    rows = [json.loads(x) for x in train.read_text().splitlines()]
    prompts = [{"input_text": r["input_text"]} for r in rows[:10]]
    prompts += [prompts[0], {"input_text": f"{FAILS} {rows[0]['input_text']}"}]
    return (write_jsonl(tmp_path / "prompts.jsonl", prompts), write_jsonl(tmp_path / "labeled.jsonl", rows[10:16]), ev)


def rationale_calls(monkeypatch, empty: str, echo: str = "no row holds this", adapters: list | None = None):
    """The prompts of every rationale generation; a batch holding FAILS raises (out of memory), the
    rationale of a row whose text holds `empty` comes back empty, and one holding `echo` is the label
    again. The others get a sentence (over two lines) before the tiny model's own text, which is random
    and often nothing readable. `adapters` collects whether LoRA layers were on while generating."""
    calls, real = [], distill_rationale.generate_texts

    def generating(model, tokenizer, prompts, cfg=None, **kw):
        calls.append(list(prompts))
        if adapters is not None:
            adapters.append([not m.disable_adapters for m in model.modules() if hasattr(m, "lora_A")])
        if any(FAILS in p for p in prompts):
            raise RuntimeError("CUDA out of memory (forced for the test)")
        assert cfg.temperature == 0 and cfg.max_output_tokens == 6  # greedy, capped
        def label(prompt):
            return re.search(r'category "([^"]+)"', prompt).group(1)

        return ["" if empty in p else f' "{label(p)}". ' if echo in p else f"Because it fits.\n  {text}"
                for p, text in zip(prompts, real(model, tokenizer, prompts, cfg, **kw))]

    monkeypatch.setattr(distill_rationale, "generate_texts", generating)
    return calls


def rationale_pass(workspace, tiny_model_dir, prompts, labeled, **kw):
    cfg = TeacherPassConfig(teacher=str(tiny_model_dir), prompts=str(prompts), labeled=str(labeled), rationale=True,
                            rationale_tokens=6, device="cpu", **kw)
    return jobs.create_teacher_pass(workspace, cfg)


def test_each_row_records_its_rationale_or_why_not(workspace, tiny_model_dir, distill_data, monkeypatch):
    prompts, labeled, _ = distill_data
    first, second = (json.loads(x)["input_text"] for x in prompts.read_text().splitlines()[1:3])
    calls = rationale_calls(monkeypatch, empty=first, echo=second)
    job_dir = rationale_pass(workspace, tiny_model_dir, prompts, labeled, batch_size=4)
    run_job(job_dir)
    assert runs.read_status(job_dir)["state"] == "succeeded"
    answers = distill_teacher.read_answers(job_dir)
    assert sorted(answers) == list(range(18)) and all(r["status"] == "ok" for r in answers.values())
    # Each question names the teacher's own label and holds the row's text, through the chat template.
    asked = {p for call in calls for p in call}
    for r in answers.values():
        question = distill_rationale.question_template("classification", r["answer"])
        assert f'category "{r["answer"]}"' in question
        assert render_prompt(load_tokenizer(str(tiny_model_dir)), question, r["prompt"]) in asked
    failed = [r for r in answers.values() if FAILS in r["prompt"]]
    assert len(failed) == 1 and failed[0]["rationale"] is None and "out of memory" in failed[0]["rationale_error"]
    assert answers[1]["rationale"] is None and answers[1]["rationale_error"] == distill_rationale.EMPTY
    assert answers[2]["rationale"] is None and answers[2]["rationale_error"] == distill_rationale.ECHO
    for r in answers.values():  # a rationale, or the reason there is none: never silently missing
        assert (r["rationale"] is None) != (r["rationale_error"] is None)
    explained = [r for r in answers.values() if r["rationale"]]
    assert len(explained) == 15  # only the failing, empty and echoing rows have none: never their neighbours
    assert all(r["rationale"].startswith("Because it fits.") and "\n" not in r["rationale"] for r in explained)

    summary = review(job_dir)
    missing = [r["row"] for r in summary["rows"] if "no_rationale" in r["flags"]]
    assert summary["counts"]["no_rationale"] == len(missing) == 3
    assert set(missing) == {i for i, r in answers.items() if r["rationale"] is None}
    assert summary["kept"] == 18  # a row without a rationale still teaches its answer


def test_a_resumed_pass_does_not_ask_finished_rows_again(workspace, tiny_model_dir, distill_data, monkeypatch):
    prompts, labeled, _ = distill_data
    calls = rationale_calls(monkeypatch, empty="no row holds this")
    job_dir = rationale_pass(workspace, tiny_model_dir, prompts, labeled, batch_size=1)
    scored = teacher_calls(monkeypatch, on_call=lambda n: n == 1 and jobs.cancel(job_dir))
    run_job(job_dir)  # stopped after the first write: its rows have answers and rationales together
    assert runs.read_status(job_dir)["state"] == "cancelled"
    first = distill_teacher.read_answers(job_dir)
    per_write = distill_teacher.BATCHES_PER_WRITE
    assert len(first) == per_write and all("rationale" in r for r in first.values())
    unfinished = {i for i, r in first.items() if not distill_rationale.rationale_done(r)}  # a failed rationale
    asked_before = len(calls)

    (job_dir / "cancel").unlink()
    run_job(job_dir)
    assert runs.read_status(job_dir)["state"] == "succeeded"
    final = distill_teacher.read_answers(job_dir)
    tokenizer, template = load_tokenizer(str(tiny_model_dir)), runs.read_json(job_dir / "teacher.json")["template"]
    pending = [i for i in range(18) if i not in first or i in unfinished]
    assert len(pending) == 18 - per_write + len(unfinished)
    # Exactly the rows not finished before are asked again, their label and their rationale; none other.
    again = [p for call in scored[1:] for p in call]
    assert Counter(again) == Counter(render_prompt(tokenizer, template, final[i]["prompt"]) for i in pending)
    questions = {p for call in calls[asked_before:] for p in call}
    assert questions == {render_prompt(tokenizer, distill_rationale.question_template("classification",
                                                                                       final[i]["answer"]),
                                       final[i]["prompt"]) for i in pending}
    assert all(final[i] == r for i, r in first.items() if i not in unfinished)
    assert all(distill_rationale.rationale_done(r) or FAILS in r["prompt"] for r in final.values())


def test_student_learns_kept_labels_plus_rationale_rows_and_still_answers_with_a_label(
        workspace, tiny_model_dir, distill_data, monkeypatch):
    prompts, labeled, ev = distill_data
    rationale_calls(monkeypatch, empty="no row holds this")
    job_dir = rationale_pass(workspace, tiny_model_dir, prompts, labeled, batch_size=4)
    run_job(job_dir)
    summary = review(job_dir)
    kept = [r for r in summary["rows"] if r["decision"] == "keep"]
    explained = [r for r in kept if r["rationale"]]
    assert len(kept) == 18 and 0 < len(explained) < len(kept)  # the FAILS row has none, and is kept
    tokenizer = load_tokenizer(str(tiny_model_dir))

    run_dir, why = create_student(workspace, job_dir, model=str(tiny_model_dir), eval_file=str(ev), steps=2,
                                  eval_every=2, batch_size=4, template=TEMPLATE, device="cpu",
                                  learns=RATIONALE_AND_ANSWER)
    cfg = TuneConfig.from_dict(runs.read_json(run_dir / "config.json"))
    assert cfg.template == TEMPLATE and cfg.labels == LABELS
    assert cfg.distilled_from["learns"] == RATIONALE_AND_ANSWER
    assert cfg.distilled_from["kept"] == 18 and cfg.distilled_from["rationale_rows"] == len(explained)
    assert f"{len(explained)} rationale rows" in why
    rows, _ = build_examples(cfg, tokenizer)  # what the trainer will learn, exactly
    expected = []
    for r in kept:
        expected.append({"prompt": render_prompt(tokenizer, TEMPLATE, r["prompt"]),  # what evaluation asks
                         "completion": render_answer(tokenizer, r["answer"])})
        if r["rationale"]:
            instruction = distill_rationale.student_instruction("classification", r["prompt"])
            expected.append({"prompt": render_chat_prompt(tokenizer, [{"role": "user", "content": instruction}]),
                             "completion": render_answer(tokenizer, r["rationale"])})
    assert rows == expected

    run_job(run_dir)
    assert runs.read_status(run_dir)["state"] == "succeeded", runs.log_tail(run_dir)
    scored = run_evaluation(workspace, EvalConfig(data=str(ev), task="classification", run_id=run_dir.name,
                                                  score_base=False, mode="score", device="cpu"), workspace / "ev")
    predictions = runs.read_jsonl(workspace / "ev" / "predictions.jsonl")
    assert 0 <= scored["tuned"]["macro_f1"] <= 1 and len(predictions) == 8
    assert all(p["tuned"] in LABELS and p["tuned_label"] == p["tuned"] for p in predictions)  # label scoring

    # Answer only: the same pass, no rationale rows.
    plain_dir, _ = create_student(workspace, job_dir, model=str(tiny_model_dir), eval_file=str(ev), steps=2,
                                  batch_size=4, template=TEMPLATE, device="cpu", learns=ANSWER_ONLY)
    plain = TuneConfig.from_dict(runs.read_json(plain_dir / "config.json"))
    assert plain.distilled_from["rationale_rows"] == 0
    assert build_examples(plain, tokenizer)[0] == [e for e in expected if not e["prompt"].count("Explain in one")]
    assert len(build_examples(plain, tokenizer)[0]) == 18


def test_a_teacher_run_explains_with_its_adapter_off(workspace, tiny_model_dir, tiny_classification, distill_data,
                                                     monkeypatch):
    from test_train import tiny_config

    prompts, _, _ = distill_data
    teacher_run = jobs.create_tune(workspace, TuneConfig.from_dict(
        tiny_config(tiny_model_dir, *tiny_classification, steps=1, eval_every=1)))
    run_job(teacher_run)
    adapters = []
    rationale_calls(monkeypatch, empty="no row holds this", adapters=adapters)
    scored = teacher_calls(monkeypatch)
    real_scoring = distill_teacher.score_labels

    def scoring_with_adapter(model, *args, **kw):  # the label is the tuned run's: its adapter is on
        assert all(not m.disable_adapters for m in model.modules() if hasattr(m, "lora_A"))
        return real_scoring(model, *args, **kw)

    monkeypatch.setattr(distill_teacher, "score_labels", scoring_with_adapter)
    job_dir = jobs.create_teacher_pass(workspace, TeacherPassConfig(
        teacher=f"run:{teacher_run.name}", prompts=str(prompts), rationale=True, rationale_tokens=6, limit=4,
        device="cpu"))
    run_job(job_dir)
    assert runs.read_status(job_dir)["state"] == "succeeded" and scored
    assert adapters and all(layers and not any(layers) for layers in adapters)  # every LoRA layer off
    assert all(r["rationale"] for r in distill_teacher.read_answers(job_dir).values())


def test_rationale_settings_are_checked(workspace, tiny_model_dir, distill_data, capsys):
    prompts, labeled, _ = distill_data
    with pytest.raises(ConfigError, match="rationale_tokens"):
        TeacherPassConfig(teacher="m", prompts="p.jsonl", rationale=True, rationale_tokens=0)
    # A pass without rationales cannot teach them.
    job_dir = jobs.create_teacher_pass(workspace, TeacherPassConfig(teacher=str(tiny_model_dir), prompts=str(prompts),
                                                                    labeled=str(labeled), limit=12, device="cpu"))
    run_job(job_dir)
    with pytest.raises(ValueError, match="without rationales"):
        create_student(workspace, job_dir, model=str(tiny_model_dir), steps=1, learns=RATIONALE_AND_ANSWER)
    with pytest.raises(ValueError, match="answer_only or rationale_and_answer"):
        create_student(workspace, job_dir, model=str(tiny_model_dir), steps=1, learns="both")
    code = main(["distill", "--teacher-pass", job_dir.name, "--rationale", "--student", str(tiny_model_dir),
                 "--steps", "1", "--workspace", str(workspace)])
    assert code == 2 and "without rationales" in capsys.readouterr().err


def test_cli_distill_with_rationale(workspace, tiny_model_dir, distill_data, capsys, monkeypatch):
    prompts, labeled, _ = distill_data
    ws = ["--workspace", str(workspace)]
    # A new pass from the command line: the worker's tiny random model writes no readable rationale, and a
    # student cannot learn an empty rationale task; it is told so, and how to learn the answers alone.
    code = main(["distill", "--teacher", str(tiny_model_dir), "--student", str(tiny_model_dir), "--prompts",
                 str(prompts), "--labels", str(labeled), "--rationale", "--rationale-tokens", "4", "--limit", "12",
                 "--steps", "1", "--batch-size", "4", "--device", "cpu", "--wait", *ws])
    (job_dir,) = (workspace / "distill").iterdir()
    config = runs.read_json(job_dir / "job.json")["config"]
    assert config["rationale"] is True and config["rationale_tokens"] == 4
    answers = distill_teacher.read_answers(job_dir)
    assert len(answers) == 12 and all("rationale" in r for r in answers.values())
    err = capsys.readouterr().err
    if any(r["rationale"] for r in answers.values()):
        assert code == 0, err
    else:
        assert code == 2 and "no kept row of the teacher pass" in err and "--answer-only" in err

    # A pass whose teacher explained its answers (asked here in this process): rationale + answer by default.
    rationale_calls(monkeypatch, empty="no row holds this")
    explained_dir = rationale_pass(workspace, tiny_model_dir, prompts, labeled, batch_size=4, limit=12)
    run_job(explained_dir)
    code = main(["distill", "--teacher-pass", explained_dir.name, "--student", str(tiny_model_dir), "--steps", "1",
                 "--batch-size", "4", "--device", "cpu", "--wait", "--json", *ws])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and out["status"] == "succeeded" and out["learns"] == RATIONALE_AND_ANSWER, out
    origin = runs.read_json(runs.run_path(workspace, out["run_id"]) / "config.json")["distilled_from"]
    explained = sum(bool(r["rationale"]) for r in distill_teacher.read_answers(explained_dir).values())
    assert origin["rationale_rows"] == explained == 11 and origin["kept"] == 12  # the FAILS row has none

    code = main(["distill", "--teacher-pass", explained_dir.name, "--answer-only", "--student", str(tiny_model_dir),
                 "--steps", "1", "--device", "cpu", "--wait", "--json", *ws])
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and again["learns"] == ANSWER_ONLY
    again_origin = runs.read_json(runs.run_path(workspace, again["run_id"]) / "config.json")["distilled_from"]
    assert again_origin["rationale_rows"] == 0
