"""The run panel (Tune page), the job queue, the speed trial and the Runs page, through the real
navigation. Runs are written by hand in the real run-folder format (core.runs); no worker is started:
core.jobs' launchers are replaced by recorders wherever a button would start one."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import open_page

from core import job_queue, jobs, runs
from core.config import TuneConfig
from core.names import SAMPLES_FILE
from core.templates import default_template

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "classification_train.jsonl"
LABELS = ["games", "mail", "science"]



@pytest.fixture
def launches(monkeypatch):
    """Every worker launch the pages ask for, recorded instead of started."""
    calls = {"submit": [], "spawned": []}

    def submit(run_dir):
        calls["submit"].append(Path(run_dir))
        return "started"

    monkeypatch.setattr(jobs, "submit", submit)
    monkeypatch.setattr(job_queue, "_spawn", lambda job_dir, device: calls["spawned"].append(Path(job_dir)))
    return calls



def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def make_run(ws: Path, name: str, *, losses=(3.2, 2.8, 2.5, 2.1, 1.9, 1.7, 1.6, 1.5, 1.45, 1.4, 1.38, 1.35),
             eval_every: int = 4, state: str = "succeeded", learning_rate: float = 2e-4, **status) -> Path:
    cfg = TuneConfig(task="classification", train_file=str(SAMPLE), template=default_template("classification", LABELS),
                     labels=LABELS, max_iterations=len(losses), eval_every=eval_every, learning_rate=learning_rate,
                     input_column="input_text", output_column="output_text", early_stopping_patience=2)
    run_dir = runs.create_run(ws, cfg.to_dict(), name=name)
    for step, loss in enumerate(losses, start=1):
        runs.append_metrics(run_dir, {"step": step, "time": 2.0 * step, "loss": loss, "learning_rate": 2e-4 * (1 - step / 20),
                                      "tokens_per_s": 120.0 + step, "mean_token_accuracy": 0.5 + step / 50})
        if step % eval_every == 0:
            runs.append_metrics(run_dir, {"step": step, "eval_loss": loss + 0.2 + (0.3 if step == len(losses) else 0),
                                          "eval_mean_token_accuracy": 0.4 + step / 50})
    runs.update_status(run_dir, state=state, step=len(losses), max_steps=len(losses), device="CPU (2 cores)",
                       precision="fp32", train_rows=360, eval_rows=40, elapsed_s=24.0, phase="done",
                       started="2026-01-01T10:00:00+00:00", finished="2026-01-01T10:00:24+00:00", **status)
    (run_dir / "adapter").mkdir()
    return run_dir


def test_run_panel_curves_best_step_and_samples(ws):
    run_dir = make_run(ws, "best run", best_step=8, best_eval_loss=1.7, stopped_early=True, peak_memory_mb=912.0)
    with open(run_dir / SAMPLES_FILE, "w", encoding="utf-8") as f:
        for step in (4, 8):
            for line, ref in ((3, "games"), (7, "mail")):
                answer = ref if step == 8 else "science"
                f.write(json.dumps({"step": step, "line": line, "input_text": f"text {line}", "reference": ref,
                                    "answer": answer}) + "\n")
    at = open_page("tune")
    spec = chart_specs(at)[0]
    assert [t["name"] for t in spec["data"]] == ["Train loss", "Train loss (smoothed)", "Eval loss"]
    assert spec["layout"]["shapes"][0]["x0"] == 8  # the best step, marked
    assert "step 8" in spec["layout"]["annotations"][0]["text"]
    assert any("Adapter from step 8 (lowest eval loss" in m.value for m in at.markdown)
    assert any("Stopped early" in i.value for i in at.info)
    assert any("912 MB" in m.value for m in at.markdown)  # peak memory, with device and precision
    assert any("CPU (2 cores)" in m.value for m in at.markdown)

    table = at.dataframe[0].value  # eval answers, newest step first
    assert list(table["Step"]) == [8, 8, 4, 4] and list(table["Right"]) == [True, True, False, False]

    # The smaller curves: token accuracy (train and eval), learning rate, tokens/s.
    at.pills(key="run_more_curves::sft").set_value(["Next-token accuracy", "Learning rate", "Tokens / s"]).run()
    assert not at.exception, [e.value for e in at.exception]
    specs = chart_specs(at)
    assert [[t["name"] for t in s["data"]] for s in specs[1:]] == [["Train", "Eval"], ["Learning rate"], ["Tokens / s"]]

    at.toggle(key="run_smooth").set_value(False).run()
    assert [t["name"] for t in chart_specs(at)[0]["data"]] == ["Train loss", "Eval loss"]


def test_failed_run_shows_error_and_hint_first(ws):
    run_dir = make_run(ws, "oom run", state="failed", error="OutOfMemoryError: CUDA out of memory. Tried to "
                       "allocate 2.00 GiB", hint="Out of memory: lower the batch size or the max sequence length.")
    (run_dir / "worker.log").write_text("step 3\nTraceback (most recent call last):\ntorch.OutOfMemoryError\n")
    at = open_page("tune")
    assert "CUDA out of memory" in at.error[0].value
    assert any("lower the batch size" in i.value for i in at.info)
    assert any("torch.OutOfMemoryError" in c.value for c in at.code)
    assert not any(b.label.startswith("Resume") for b in at.button)  # no checkpoint, nothing to resume from


def test_cancelled_run_with_checkpoint_resumes(ws, launches, monkeypatch):
    run_dir = make_run(ws, "stopped run", state="cancelled")
    (run_dir / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    runs.write_json(run_dir / "checkpoints" / "checkpoint-4" / "checkpoint-complete", {"step": 4})
    at = open_page("tune")
    resume = at.button(key=f"resume::{run_dir.name}")
    assert resume.label == "Resume from step 4"
    resume.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert launches["submit"] == [run_dir]  # jobs.resume went through the queue
    status = runs.read_status(run_dir)
    assert status["state"] == "queued" and status["resume"] is True


def test_running_and_queued_runs_cancel(ws, monkeypatch):
    running = make_run(ws, "now", state="running", pid=os.getpid())
    waiting = make_run(ws, "later", state="queued")
    runs.write_json(ws / "queue.json", [waiting.name])
    at = open_page("tune")
    at.selectbox(key="tune_run_pick").set_value(running.name).run()
    at.button(key=f"cancel::{running.name}").click().run()
    assert (running / "cancel").exists()
    at.selectbox(key="tune_run_pick").set_value(waiting.name).run()
    assert any("position 1 of 1" in p.proto.text for p in at.get("progress"))
    at.button(key=f"cancel::{waiting.name}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert job_queue.queue(ws) == [] and runs.read_status(waiting)["state"] == "cancelled"


def test_queue_panel_moves_and_removes(ws, launches):
    make_run(ws, "busy", state="running", pid=os.getpid())  # the machine is taken: nothing starts
    ids = [make_run(ws, f"waiting {i}", state="queued").name for i in range(3)]
    runs.write_json(ws / "queue.json", ids)
    at = open_page("tune")
    listed = [m.value for m in at.markdown if "Tuning · cpu · starts" in m.value]
    assert [next(i for i in ids if i in m) for m in listed] == ids
    assert at.button(key=f"q_up::{ids[0]}").disabled and at.button(key=f"q_down::{ids[2]}").disabled
    at.button(key=f"q_up::{ids[2]}").click().run()
    assert job_queue.queue(ws) == [ids[0], ids[2], ids[1]]
    at.button(key=f"q_remove::{ids[0]}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert job_queue.queue(ws) == [ids[2], ids[1]]
    assert runs.read_status(runs.runs_dir(ws) / ids[0])["state"] == "cancelled"
    assert launches["spawned"] == []  # drawing and reordering the queue never starts a worker


def test_start_tuning_submits_and_says_queued(ws, monkeypatch):
    submitted = []

    def submit(run_dir):
        submitted.append(Path(run_dir))
        runs.write_json(ws / "queue.json", ["other-run", Path(run_dir).name])
        return "queued"

    monkeypatch.setattr(jobs, "submit", submit)
    at = open_page("tune")
    at.number_input(key="tune_patience").set_value(3).run()
    at.number_input(key="tune_eval_samples").set_value(5).run()
    at.toggle(key="tune_best").set_value(False).run()
    at.button[[b.label for b in at.button].index("Start tuning")].click().run()
    assert not at.exception, [e.value for e in at.exception]
    (run_dir,) = submitted
    cfg = runs.read_json(run_dir / "config.json")
    assert (cfg["early_stopping_patience"], cfg["eval_samples"], cfg["best_checkpoint"]) == (3, 5, False)
    assert cfg["method"] == "sft"
    assert any("queued (position 2 of 2)" in i.value for i in at.info)


def test_dpo_from_a_labeling_queue(ws, launches):
    from core import preferences

    ids = preferences.add_pairs(ws, "prefs", [{"prompt": f"question {i}", "answer_a": f"good {i}",
                                               "answer_b": f"bad {i}"} for i in range(12)])
    for i in ids[:10]:  # two left unlabeled: not curated
        preferences.adjudicate(ws, i, "a", by="lead")
    at = open_page("tune")
    at.radio(key="tune_method").set_value("dpo").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("12 items  ·  10 curated pairs" in o for o in at.selectbox(key="tune_queue").options)
    template = next(t for t in at.text_area if t.key.startswith("tune_template::dpo"))
    assert template.value == "{input_text}"
    at.number_input(key="tune_beta").set_value(0.3).run()
    at.button[[b.label for b in at.button].index("Start tuning")].click().run()
    assert not at.exception, [e.value for e in at.exception]
    (run_dir,) = launches["submit"]
    cfg = runs.read_json(run_dir / "config.json")
    assert cfg["method"] == "dpo" and cfg["preference_queue"] == "prefs" and cfg["train_file"] == "queue:prefs"
    assert cfg["beta"] == 0.3 and cfg["learning_rate"] == pytest.approx(5e-5)


def test_dpo_run_shows_reward_curves(ws):
    run_dir = make_run(ws, "dpo run")
    cfg = runs.read_json(run_dir / "config.json")
    runs.write_json(run_dir / "config.json", {**cfg, "method": "dpo", "preference_queue": "prefs"})
    for step in range(1, 5):
        runs.append_metrics(run_dir, {"step": step, "loss": 0.69, "rewards_accuracies": 0.5 + step / 10,
                                      "rewards_margins": 0.01 * step})
    runs.append_metrics(run_dir, {"step": 4, "eval_loss": 0.6, "eval_rewards_accuracies": 0.75,
                                  "eval_rewards_margins": 0.05})
    at = open_page("tune")
    pills = at.pills(key="run_more_curves::dpo")
    assert "Rewards" in pills.options and "Next-token accuracy" not in pills.options
    pills.set_value(["Rewards"]).run()
    assert not at.exception, [e.value for e in at.exception]
    rewards = chart_specs(at)[1]
    assert [t["name"] for t in rewards["data"]] == ["Train", "Eval", "Train", "Eval"]
    assert rewards["data"][1]["y"] == [0.75]


def test_measure_speed_shows_measured_numbers(ws, monkeypatch):
    trial = ws / "estimates" / "trial-1"
    calls = []

    def start_estimate(workspace, config):
        calls.append(config.to_dict())
        trial.mkdir(parents=True)
        runs.write_json(trial / "status.json", {"state": "succeeded", "eval_rows": 40, "peak_memory_mb": 1536,
                                                "device": "CPU (2 cores)", "precision": "fp32"})
        for step in range(1, 5):
            runs.append_metrics(trial, {"step": step, "time": 10.0 + 2.5 * step, "loss": 3.0})
        return trial

    monkeypatch.setattr(jobs, "start_estimate", start_estimate)
    at = open_page("tune")
    steps = next(n for n in at.number_input if n.label == "Steps (max_iterations)")
    steps.set_value(100).run()
    at.button[[b.label for b in at.button].index("Measure speed")].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(calls) == 1 and calls[0]["max_iterations"] == 100
    per_step = next(m for m in at.metric if m.label == "Seconds per step")
    assert per_step.value == "2.50 s"
    assert next(m for m in at.metric if m.label == "Peak memory").value == "1,536 MB"
    total = next(m for m in at.metric if m.label == "Projected total")
    assert total.value.startswith("4 min")  # 100 × 2.5 s plus 5 eval passes
    assert any("Measured from 4 real tuning steps" in c.value for c in at.caption)


# ---------------------------------------------------------------- the Runs page

def test_runs_page_table_and_filters(ws):
    make_run(ws, "alpha run")
    make_run(ws, "beta run", state="failed", error="boom")
    at = open_page("runs")
    assert at.title[0].value == "Runs"
    table = at.dataframe[0].value
    assert sorted(table["Name"]) == ["alpha run", "beta run"]
    assert {"Status", "Base model", "Dataset", "Steps", "Best eval loss", "Duration", "Created"} <= set(table.columns)
    assert set(table["Duration"]) == {"24 s"}
    at.text_input(key="runs_filter").set_value("alpha").run()
    assert list(at.dataframe[0].value["Name"]) == ["alpha run"]
    at.text_input(key="runs_filter").set_value("").run()
    at.pills(key="runs_states").set_value(["failed"]).run()
    assert list(at.dataframe[0].value["Name"]) == ["beta run"]


def test_runs_page_compares_runs(ws):
    a = make_run(ws, "lr small", learning_rate=1e-4)
    b = make_run(ws, "lr large", learning_rate=1e-3, losses=(3.0, 2.0, 1.5, 1.2))
    at = open_page("runs")
    at.multiselect(key="runs_pick").set_value([a.name, b.name]).run()
    assert not at.exception, [e.value for e in at.exception]
    spec = chart_specs(at)[0]
    names = {t["name"] for t in spec["data"]}
    assert names == {"lr small", "lr large"}
    colors = {t["name"]: t["line"]["color"] for t in spec["data"]}
    assert colors["lr small"] != colors["lr large"]  # one colour per run
    diff = at.dataframe[-1].value
    assert "learning_rate" in diff.index and list(diff.loc["learning_rate"]) == ["0.0001", "0.001"]
    assert "template" not in diff.index  # the same in both


def test_runs_page_renames_and_deletes(ws):
    run_dir = make_run(ws, "old name")
    at = open_page("runs")
    at.multiselect(key="runs_pick").set_value([run_dir.name]).run()
    at.text_input(key=f"runs_name::{run_dir.name}").set_value("new name").run()
    at.button(key=f"runs_rename::{run_dir.name}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert runs.read_status(run_dir)["name"] == "new name"
    assert list(at.dataframe[0].value["Name"]) == ["new name"]

    at.button(key=f"runs_del::{run_dir.name}").click().run()
    assert run_dir.exists()  # asks first
    at.button(key=f"runs_delok::{run_dir.name}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not run_dir.exists()
    assert any("Deleted run" in s.value for s in at.success)


def test_runs_page_refuses_to_delete_a_running_run(ws):
    run_dir = make_run(ws, "busy", state="running", pid=os.getpid())
    at = open_page("runs")
    at.multiselect(key="runs_pick").set_value([run_dir.name]).run()
    at.button(key=f"runs_del::{run_dir.name}").click().run()
    at.button(key=f"runs_delok::{run_dir.name}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert run_dir.exists()
    assert "is running; cancel it first" in at.error[0].value


def test_measure_speed_polls_while_the_trial_runs(ws, monkeypatch):
    trial = ws / "estimates" / "trial-2"

    def start_estimate(workspace, config):
        trial.mkdir(parents=True)
        runs.write_json(trial / "status.json", {"state": "running", "step": 1, "phase": "training",
                                                "pid": os.getpid()})
        return trial

    monkeypatch.setattr(jobs, "start_estimate", start_estimate)
    at = open_page("tune")
    at.button[[b.label for b in at.button].index("Measure speed")].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Measuring speed" in i.value and "step 1 of 4" in i.value for i in at.info)
    assert at.button[[b.label for b in at.button].index("Measure speed")].disabled  # one trial at a time


def test_pages_list_good_runs_beside_damaged_folders(ws):
    from test_runs import corrupt

    good = make_run(ws, "good run")
    damaged = [runs.create_run(ws, {"task": "classification"}) for _ in range(20)]
    for how, run_dir in enumerate(damaged):
        corrupt(run_dir, how)
    at = open_page("runs")
    assert not at.exception, [e.value for e in at.exception]
    assert "good run" in at.dataframe[0].value["Name"].tolist()
    assert len(at.dataframe[0].value) == 21
    at.multiselect(key="runs_pick").set_value([damaged[0].name]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("cannot be read" in e.value for e in at.error)
    at.multiselect(key="runs_pick").set_value([good.name, damaged[3].name, damaged[12].name]).run()
    assert not at.exception, [e.value for e in at.exception]  # compare with damaged ones in it
    for page in ("tune", "evaluate", "playground"):
        assert not open_page(page).exception
    at = open_page("tune")
    for run_dir in damaged:  # each damaged run opened in the run panel
        at.selectbox(key="tune_run_pick").set_value(run_dir.name).run()
        assert not at.exception, (run_dir.name, [e.value for e in at.exception])


def test_tune_page_estimates_the_time_before_launch(ws):
    at = open_page("tune")
    assert any("Measure speed" in c.value and "No finished run" in c.value for c in at.caption)
    make_run(ws, "earlier run")  # 2.0 s a step on this model and batch size (its metrics' clock)
    at = open_page("tune")
    steps = next(n for n in at.number_input if n.label == "Steps (max_iterations)").value
    estimate = next(c.value for c in at.caption if c.value.startswith(":material/schedule: About"))
    assert f"for {steps} steps: 2.0 s a step" in estimate and ui_duration(2.0 * steps) in estimate


def ui_duration(seconds: float) -> str:
    from studio.ui import fmt_duration

    return fmt_duration(seconds)


def test_playground_says_when_a_job_runs_beside_it(ws):
    running = make_run(ws, "training now", state="running", pid=os.getpid())
    runs.write_json(ws / "queue.json", {"waiting": [], "started": [{"job": f"runs/{running.name}", "device": "cpu"}]})
    at = open_page("playground")
    assert any("A job is running on this machine (tuning)" in c.value for c in at.caption)


def test_every_page_shows_background_work_in_the_sidebar(ws, launches):
    busy = make_run(ws, "busy", state="running", pid=os.getpid())
    waiting = make_run(ws, "next one", state="queued")
    device = job_queue.default_device()
    runs.write_json(ws / "queue.json", {"started": [{"job": f"runs/{busy.name}", "device": device}],
                                        "waiting": [{"job": f"runs/{waiting.name}", "device": device}]})
    for page in ("datasets", "playground", "preferences"):
        at = open_page(page)
        work = next(c.value for c in at.sidebar.caption if "Background work" in c.value)
        assert "**busy**" in work and "Tuning" in work and "1 waiting" in work, work
    runs.write_json(ws / "queue.json", {"started": [], "waiting": []})  # nothing runs or waits: no word of it
    at = open_page("datasets")
    assert not any("Background work" in c.value for c in at.sidebar.caption)
