"""The `studio` command line, end to end on the tiny model."""
import json

import pytest
from conftest import ASSETS

from core import runs
from core.cli import main


def test_tune_wait_then_evaluate_base_and_tuned(workspace, tiny_model_dir, tiny_classification, capsys):
    train, ev = tiny_classification
    code = main(["tune", "--train", str(train), "--eval", str(ev), "--task", "classification",
                 "--model", str(tiny_model_dir), "--steps", "3", "--learning-rate", "1e-3", "--batch-size", "4",
                 "--device", "cpu", "--wait", "--json", "--workspace", str(workspace)])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and out["status"] == "succeeded"
    cfg = runs.read_json(runs.run_path(workspace, out["run_id"]) / "config.json")
    assert cfg["labels"] == ["games", "math"] and "games, math" in cfg["template"]

    code = main(["evaluate", "--data", str(ev), "--task", "classification", "--run", out["run_id"],
                 "--limit", "4", "--json", "--device", "cpu", "--workspace", str(workspace)])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and set(result) == {"base", "tuned"}
    for m in result.values():
        assert m["evaluation_status"] == {"num_successful_rows": 4, "num_total_rows": 4}
        assert {"accuracy", "macro_f1", "micro_f1", "per_label"} <= set(m)
        assert {r["label"] for r in m["per_label"]} == {"games", "math"}
        assert set(m["per_label"][0]) == {"label", "precision", "recall", "f1_score", "support"}
    # The evaluation used the run's own template, and kept per-row predictions.
    eval_dir = next((runs.run_path(workspace, out["run_id"]) / "evals").iterdir())
    assert runs.read_json(eval_dir / "metrics.json")["template"] == cfg["template"]
    rows = (eval_dir / "predictions.jsonl").read_text().splitlines()
    assert len(rows) == 4 and {"base", "tuned", "reference"} <= set(json.loads(rows[0]))


def test_generate_with_flags(workspace, tiny_model_dir, capsys):
    code = main(["generate", "--model", str(tiny_model_dir), "--prompt", "Hello", "--max-output-tokens", "5",
                 "--temperature", "0.7", "--top-k", "10", "--json", "--workspace", str(workspace)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and "Hello" in out["prompt"] and isinstance(out["output"], str)


def test_bad_training_file_fails_before_any_run(workspace, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input_text": "x", "output_text": "y"}\n{"input_text": "only input"}\n')
    code = main(["tune", "--train", str(bad), "--task", "classification", "--workspace", str(workspace)])
    err = capsys.readouterr().err
    assert code == 2 and "bad.jsonl, line 2, field `output_text`" in err
    assert runs.list_runs(workspace) == []


@pytest.mark.parametrize("run_id", ["../../etc", "no-such-run"])
def test_status_of_unknown_or_unsafe_run_id(workspace, run_id, capsys):
    assert main(["status", run_id, "--workspace", str(workspace)]) == 2
    assert "run" in capsys.readouterr().err


def test_runs_compare_rename_delete(workspace, capsys):
    a = runs.create_run(workspace, {"task": "classification", "max_iterations": 10, "learning_rate": 1e-3,
                                    "train_file": "/x/train.jsonl"})
    b = runs.create_run(workspace, {"task": "classification", "max_iterations": 10, "learning_rate": 2e-4,
                                    "train_file": "/x/train.jsonl"})
    for d, losses in ((a, [2.0, 1.0]), (b, [2.0, 1.5])):
        for i, l in enumerate(losses, 1):
            runs.append_metrics(d, {"step": i, "loss": l})
        runs.update_status(d, state="succeeded", step=2, best_eval_loss=losses[-1] + 0.1, best_step=2,
                           started="2026-01-01T00:00:00+00:00", finished="2026-01-01T00:01:30+00:00")
    ws = ["--workspace", str(workspace)]
    assert main(["compare", a.name, b.name, "--json", *ws]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["config_diff"] == {"learning_rate": [1e-3, 2e-4]}
    assert [r["best_eval_loss"] for r in result["runs"]] == [1.1, 1.6] and result["runs"][0]["duration_s"] == 90
    assert main(["rename", a.name, "lr 1e-3", *ws]) == 0
    assert main(["runs", "--json", *ws]) == 0
    capsys.readouterr()
    assert runs.read_status(a)["name"] == "lr 1e-3"
    assert main(["delete", b.name, *ws]) == 2  # needs --yes
    assert main(["delete", b.name, "--yes", *ws]) == 0
    assert [r["run_id"] for r in runs.list_runs(workspace)] == [a.name]


# ---------------------------------------------------------------- names and flags a user gets wrong

def test_rename_to_a_blank_name_is_an_error_line_not_a_traceback(workspace, capsys):
    run = runs.create_run(workspace, {"task": "classification"})
    assert main(["rename", run.name, "   ", "--workspace", str(workspace)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "empty" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, flag", [
    (["evaluate", "--data", "x.jsonl", "--task", "classification", "--run", ""], "--run"),
    (["evaluate", "--data", "x.jsonl", "--task", "classification", "--model", ""], "--model"),
    (["generate", "--prompt", "hi", "--run", ""], "--run"),
    (["generate", "--prompt", "hi", "--run", "../../etc"], "--run"),
    (["generate", "--prompt", "hi", "--model", "  "], "--model"),
    (["generate", "--prompt", "hi", "--model", "run:"], "--model"),
    (["tune", "--task", "classification", "--train", "x.jsonl", "--model", ""], "--model"),
    (["tune", "--task", "classification", "--method", "dpo", "--queue", ""], "--queue"),
    (["prefs", "generate", "--prompts", "p.jsonl", "--queue", "q", "--run-a", ""], "--run-a"),
    (["prefs", "generate", "--prompts", "p.jsonl", "--queue", "q", "--run-b", "a/b"], "--run-b"),
    (["prefs", "generate", "--prompts", "p.jsonl", "--queue", "q", "--model-a", ""], "--model-a"),
    (["prefs", "generate", "--prompts", "p.jsonl", "--queue", "q", "--model-b", ""], "--model-b"),
    (["prefs", "generate", "--prompts", "p.jsonl", "--queue", ""], "--queue"),
    (["prefs", "import", "pairs.jsonl", "--queue", " "], "--queue"),
    (["prefs", "stats", "--queue", "../x"], "--queue"),
    (["serve", "--allow-host", ""], "--allow-host"),
])
def test_empty_or_unsafe_names_are_errors_naming_the_flag(workspace, argv, flag, capsys):
    """`--run ''` used to mean the base model and `--model ''` the bundled one, silently."""
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--workspace", str(workspace)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"argument {flag}" in err and "Traceback" not in err
    assert runs.list_runs(workspace) == []


@pytest.mark.parametrize("submitted", ["started", "queued"])
def test_tune_json_reports_what_the_queue_did(workspace, monkeypatch, submitted, capsys):
    from core.cli import common

    monkeypatch.setattr(common.jobs, "submit", lambda job_dir: submitted)  # no worker is started
    monkeypatch.setattr(common.job_queue, "position", lambda ws, job_id: (2, 2))
    train = ASSETS / "classification_train.jsonl"
    argv = ["tune", "--train", str(train), "--task", "classification", "--json", "--workspace", str(workspace)]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == submitted and out["run_id"] == runs.list_runs(workspace)[0]["run_id"]


def test_tune_json_with_wait_reports_the_final_state(workspace, monkeypatch, capsys):
    from core.cli import common

    monkeypatch.setattr(common.jobs, "submit", lambda job_dir: "started")
    monkeypatch.setattr(common, "wait_and_show",  # start_run follows the run
                        lambda job_dir, quiet=False, stream=None: {"state": "failed", "error": "x"})
    train = ASSETS / "classification_train.jsonl"
    code = main(["tune", "--train", str(train), "--task", "classification", "--json", "--wait",
                 "--workspace", str(workspace)])
    assert code == 1 and json.loads(capsys.readouterr().out)["status"] == "failed"


@pytest.mark.parametrize("flags, mode", [([], "score"), (["--mode", "generate"], "generate"),
                                         (["--constrained"], "constrained"),
                                         (["--mode", "constrained"], "constrained")])
def test_evaluate_mode_flag_reaches_the_job(workspace, monkeypatch, flags, mode, capsys):
    from core.cli import common, models

    monkeypatch.setattr(common.jobs, "submit", lambda job_dir: "started")  # no worker is started
    monkeypatch.setattr(models, "wait_and_show", lambda job_dir, quiet=False, stream=None: {"state": "failed"})
    main(["evaluate", "--data", str(ASSETS / "classification_eval.jsonl"), "--task", "classification", *flags,
          "--workspace", str(workspace)])
    job = runs.read_json(next((workspace / "evals").iterdir()) / "job.json")
    assert job["config"]["mode"] == mode and job["config"]["constrained"] == (mode == "constrained")


def test_evaluate_mode_that_does_not_fit_the_task_is_an_error(workspace, capsys):
    code = main(["evaluate", "--data", str(ASSETS / "summarization_eval.jsonl"), "--task", "summarization",
                 "--mode", "score", "--workspace", str(workspace)])
    err = capsys.readouterr().err
    assert code != 0 and "classification only" in err and "Traceback" not in err
