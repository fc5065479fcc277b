"""Distillation's comparison on the tiny model: teacher, student and student-before scored on one eval
file through ordinary evaluation jobs, read back with their metrics, per-class F1, speed and size; the
comparison is recorded in the student's folder, found again, and printed by `studio distill --compare`."""
import json

import pytest
from conftest import ASSETS, write_jsonl
from safetensors import safe_open
from test_train import tiny_config

from core import jobs, runs
from core.cli import main
from core.config import TeacherPassConfig, TuneConfig
from core.data import DataError
from core.distill_compare import find_comparison, list_comparisons, read_comparison, start_comparison
from core.distill_student import create_student
from core.model_size import parameter_estimate
from core.worker import run_job

LABELS = ["games", "math"]


@pytest.fixture(scope="module")
def distilled(tiny_model_dir, tmp_path_factory):
    """A workspace with a finished teacher run, a teacher pass it answered, and a finished student."""
    root = tmp_path_factory.mktemp("distill-compare")
    ws = root / "ws"
    rows = [json.loads(x) for x in (ASSETS / "classification_train.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["output_text"] in LABELS][:30]
    train = write_jsonl(root / "train.jsonl", rows[:16])
    ev = write_jsonl(root / "eval.jsonl", rows[16:22])
    # The eval file in other column names: a comparison reads it with its own columns, not the student's.
    ev_renamed = write_jsonl(root / "eval_prompt_label.jsonl",
                             [{"prompt": r["input_text"], "label": r["output_text"]} for r in rows[16:22]])
    prompts = write_jsonl(root / "prompts.jsonl", [{"input_text": r["input_text"]} for r in rows[:16]])
    teacher = jobs.create_tune(ws, TuneConfig.from_dict(tiny_config(tiny_model_dir, train, ev, steps=2,
                                                                    eval_every=2)))
    run_job(teacher)
    job_dir = jobs.create_teacher_pass(ws, TeacherPassConfig(teacher=f"run:{teacher.name}", prompts=str(prompts),
                                                             device="cpu"))
    run_job(job_dir)
    student, _ = create_student(ws, job_dir, model=str(tiny_model_dir), steps=2, eval_every=2, batch_size=4,
                                device="cpu")
    run_job(student)
    assert runs.read_status(student)["state"] == "succeeded", runs.log_tail(student)
    return {"ws": ws, "teacher": teacher, "student": student, "pass": job_dir, "eval": ev,
            "eval_renamed": ev_renamed, "prompts": prompts, "model": tiny_model_dir}


def adapter_numel(run_dir) -> int:
    with safe_open(str(run_dir / "adapter" / "adapter_model.safetensors"), "pt") as f:
        return sum(f.get_tensor(k).numel() for k in f.keys())  # noqa: SIM118 (safe_open is not iterable)


def test_comparison_scores_teacher_student_and_student_before(distilled):
    ws, student, teacher = distilled["ws"], distilled["student"], distilled["teacher"]
    entry = start_comparison(ws, student.name, distilled["eval_renamed"], device="cpu", submit=False)
    # One evaluation of the student (with its base model) and one of the teacher run alone, recorded in the
    # student's folder before anything runs.
    assert set(entry["evaluations"]) == {"student", "teacher"}
    stored = runs.read_json(student / "compare.json")["comparisons"]
    assert [c["id"] for c in stored] == [entry["id"]]
    student_eval, teacher_eval = (ws / entry["evaluations"][r] for r in ("student", "teacher"))
    assert student_eval.parent.parent == student and teacher_eval.parent.parent == teacher
    assert jobs.read_job(student_eval)["config"]["score_base"] is True
    assert jobs.read_job(teacher_eval)["config"]["score_base"] is False
    assert read_comparison(ws, student.name)["state"] == "queued"
    assert read_comparison(ws, student.name)["models"] == []

    for d in (student_eval, teacher_eval):
        run_job(d)
    comparison = read_comparison(ws, student.name)
    assert comparison["state"] == "succeeded" and comparison["id"] == entry["id"]
    by_role = {m["role"]: m for m in comparison["models"]}
    assert [m["role"] for m in comparison["models"]] == ["teacher", "student", "student_before"]

    s_metrics, t_metrics = (runs.read_json(d / "metrics.json") for d in (student_eval, teacher_eval))
    assert "base" not in t_metrics  # the teacher run alone
    for role, block in (("teacher", t_metrics["tuned"]), ("student", s_metrics["tuned"]),
                        ("student_before", s_metrics["base"])):
        m = by_role[role]
        assert m["metrics"] == block
        assert m["headline"] == {"macro_f1": block["macro_f1"], "accuracy": block["accuracy"]}
        assert m["per_class_f1"] == {r["label"]: r["f1_score"] for r in block["per_label"]}
        assert set(m["per_class_f1"]) == set(LABELS)
        assert m["peak_memory_mb"] > 0  # recorded by the worker of its evaluation
    # Speed: answers per second of generation as metrics.json has it; student and its base share one job.
    assert by_role["teacher"]["answers_per_s"] == t_metrics["rows_per_second"] > 0
    assert by_role["student"]["answers_per_s"] == by_role["student_before"]["answers_per_s"] \
        == s_metrics["rows_per_second"]
    assert by_role["student"]["speed_shared"] and not by_role["teacher"]["speed_shared"]
    # Size: the same tiny base for all three; the adapters counted from their files.
    params = parameter_estimate(str(distilled["model"]), ws)
    weights = (distilled["model"] / "model.safetensors").stat().st_size
    assert all(m["parameters"] == params and m["size_bytes"] == weights for m in comparison["models"])
    assert by_role["teacher"]["adapter_parameters"] == adapter_numel(teacher)
    assert by_role["student"]["adapter_parameters"] == adapter_numel(student) > 0
    assert by_role["student"]["adapter_bytes"] == (student / "adapter" / "adapter_model.safetensors").stat().st_size
    assert by_role["student_before"]["adapter_parameters"] is None
    summary = comparison["summary"]
    assert summary["metric"] == "macro_f1"
    assert summary["vs_teacher"] == round(s_metrics["tuned"]["macro_f1"] - t_metrics["tuned"]["macro_f1"], 4)
    assert summary["vs_before"] == round(s_metrics["tuned"]["macro_f1"] - s_metrics["base"]["macro_f1"], 4)
    assert summary["parameters_vs_teacher"] == 1.0

    # Found again later: the same request is reused, another is not.
    assert find_comparison(ws, student.name, distilled["eval_renamed"])["id"] == entry["id"]
    assert find_comparison(ws, student.name, distilled["eval_renamed"], limit=3) is None
    assert find_comparison(ws, student.name, distilled["eval"]) is None


def test_a_base_model_teacher_is_asked_through_its_pass_template(distilled, tmp_path):
    ws, model = distilled["ws"], str(distilled["model"])
    template = "Which topic, games or math? {input_text}"
    job_dir = jobs.create_teacher_pass(ws, TeacherPassConfig(teacher=model, prompts=str(distilled["prompts"]),
                                                             labels=LABELS, template=template, device="cpu"))
    run_job(job_dir)
    student, _ = create_student(ws, job_dir, model=model, steps=1, eval_every=1, batch_size=4, device="cpu")
    run_job(student)
    entry = start_comparison(ws, student.name, distilled["eval"], limit=4, device="cpu", submit=False)
    teacher_eval = ws / entry["evaluations"]["teacher"]
    assert teacher_eval.parent == ws / "evals"  # a base model's evaluation, not a run's
    for rel in entry["evaluations"].values():
        run_job(ws / rel)
    metrics = runs.read_json(teacher_eval / "metrics.json")
    assert metrics["template"] == template and metrics["model"] == model and metrics["rows"] == 4
    comparison = read_comparison(ws, student.name)
    teacher = next(m for m in comparison["models"] if m["role"] == "teacher")
    assert teacher["metrics"] == metrics["base"] and teacher["adapter_parameters"] is None
    assert len(comparison["models"]) == 3 and comparison["limit"] == 4


def test_only_a_finished_student_run_can_be_compared(distilled):
    ws = distilled["ws"]
    with pytest.raises(ValueError, match="not a student run"):
        start_comparison(ws, distilled["teacher"].name, distilled["eval"], submit=False)
    queued, _ = create_student(ws, distilled["pass"], model=str(distilled["model"]), steps=1, device="cpu")
    with pytest.raises(ValueError, match="no adapter yet"):
        start_comparison(ws, queued.name, distilled["eval"], submit=False)
    with pytest.raises(DataError, match="no prompt/answer columns"):  # unlabeled: nothing to score against
        start_comparison(ws, distilled["student"].name, distilled["prompts"], submit=False)
    assert not (queued / "compare.json").exists() and not (queued / "evals").exists()
    assert list_comparisons(ws, queued.name) == []


def test_cli_compare_prints_the_table_and_reuses_a_finished_comparison(distilled, capsys):
    ws, student = distilled["ws"], distilled["student"]
    args = ["distill", "--student-run", student.name, "--compare", str(distilled["eval"]), "--compare-rows", "3",
            "--device", "cpu", "--workspace", str(ws)]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    comparison = out["comparison"]
    assert comparison["state"] == "succeeded" and comparison["limit"] == 3
    assert [m["role"] for m in comparison["models"]] == ["teacher", "student", "student_before"]
    assert all(m["metrics"]["evaluation_status"]["num_total_rows"] == 3 for m in comparison["models"])
    evals_before = sorted(p.name for p in (student / "evals").iterdir())

    assert main(args) == 0  # asked again: printed from the finished evaluations, nothing scored again
    captured = capsys.readouterr()
    assert "reusing comparison" in captured.err
    assert sorted(p.name for p in (student / "evals").iterdir()) == evals_before
    lines = captured.out.splitlines()
    assert "Macro F1" in lines[1] and "answers/s" in lines[1] and "size on disk" in lines[1]
    by_model = {line.split(" · ")[0]: line for line in lines[2:5]}
    assert set(by_model) == {"Teacher", "Student", "Student before tuning"}
    student_row = next(m for m in comparison["models"] if m["role"] == "student")
    assert f"{student_row['headline']['macro_f1']:.4f}" in by_model["Student"]
    assert "adapter" in by_model["Student"] and "adapter" not in by_model["Student before tuning"]
    assert "F1 per class" in captured.out and all(lab in captured.out for lab in LABELS)


def test_cli_compare_refuses_what_cannot_work(distilled, capsys):
    ws = ["--workspace", str(distilled["ws"])]
    assert main(["distill", "--student-run", distilled["student"].name, *ws]) == 2
    assert "--compare EVAL_FILE" in capsys.readouterr().err
    assert main(["distill", "--teacher", str(distilled["model"]), "--prompts", str(distilled["prompts"]),
                 "--compare", str(distilled["eval"]), *ws]) == 2
    assert "add --wait" in capsys.readouterr().err
    assert main(["distill", "--student-run", distilled["teacher"].name, "--compare", str(distilled["eval"]), *ws]) == 2
    assert "not a student run" in capsys.readouterr().err
