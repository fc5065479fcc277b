"""The job road: every kind of work is a job folder run by `python -m core.worker`, through one queue per
device. Workers here are real processes on the tiny model."""
import os
import signal
import time

from core import job_queue, jobs, runs
from core.config import EvalConfig, TuneConfig
from test_train import tiny_config


def tune_job(workspace, model_dir, data, steps):
    return jobs.create_tune(workspace, TuneConfig.from_dict(tiny_config(model_dir, *data, steps=steps)))


def start_long_run(workspace, model_dir, data, until_step):
    """A 2000-step worker, returned once it has done `until_step` steps."""
    run_dir = tune_job(workspace, model_dir, data, 2000)
    assert jobs.submit(run_dir) == "started"
    deadline = time.time() + 240
    while runs.read_status(run_dir).get("step", 0) < until_step and time.time() < deadline:
        time.sleep(0.5)
    return run_dir


def test_worker_process_runs_to_success(workspace, tiny_model_dir, tiny_classification):
    run_dir = tune_job(workspace, tiny_model_dir, tiny_classification, 4)
    assert runs.read_json(run_dir / "job.json")["kind"] == "tune"
    assert jobs.submit(run_dir) == "started"
    seen = []
    status = jobs.wait(run_dir, lambda st, new: seen.extend(new), poll=0.5, timeout=300)
    assert status["state"] == "succeeded", runs.log_tail(run_dir)
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()
    assert any("loss" in m for m in seen)
    assert job_queue.started(workspace) == [] or runs.read_status(run_dir)["state"] == "succeeded"


def test_cancel_keeps_the_adapter_so_far(workspace, tiny_model_dir, tiny_classification):
    run_dir = start_long_run(workspace, tiny_model_dir, tiny_classification, until_step=2)
    jobs.cancel(run_dir)
    status = jobs.wait(run_dir, poll=0.5, timeout=120)
    assert status["state"] == "cancelled" and 2 <= status["step"] < 2000
    assert (run_dir / "adapter" / "adapter_config.json").exists()


def test_sigkilled_worker_is_recorded_and_the_queue_moves_on(workspace, tiny_model_dir, tiny_classification):
    run_dir = start_long_run(workspace, tiny_model_dir, tiny_classification, until_step=1)
    after = tune_job(workspace, tiny_model_dir, tiny_classification, 2)
    assert jobs.submit(after) == "queued"
    os.kill(runs.read_status(run_dir)["pid"], signal.SIGKILL)
    killed = time.time()
    while runs.read_json(run_dir / "status.json")["state"] == "running" and time.time() - killed < 30:
        time.sleep(0.2)
    on_disk = runs.read_json(run_dir / "status.json")  # written by the worker's supervisor, not by a reader
    assert on_disk["state"] == "failed" and "stopped unexpectedly" in on_disk["error"]
    assert "SIGKILL" in on_disk["error"]
    assert time.time() - killed < 3 * runs.HEARTBEAT_EVERY
    assert jobs.wait(after, poll=0.5, timeout=300)["state"] == "succeeded", runs.log_tail(after)


def test_speed_estimate_is_measured_from_real_steps(workspace, tiny_model_dir, tiny_classification):
    cfg = tiny_config(tiny_model_dir, *tiny_classification, steps=200)
    folder = jobs.start_estimate(workspace, cfg)
    assert runs.read_json(folder / "job.json")["kind"] == "estimate"
    jobs.wait(folder, poll=0.5, timeout=300)
    est = jobs.estimate_from(folder, cfg)
    assert "error" not in est, est
    times = [m["time"] for m in runs.read_metrics(folder) if "loss" in m]
    assert len(times) == jobs.ESTIMATE_STEPS and est["seconds_per_step"] > 0
    assert est["total_seconds"] >= 200 * est["seconds_per_step"] * 0.99  # evals add to the steps
    assert est["peak_memory_mb"] > 100
    assert runs.list_runs(workspace) == []  # a trial is not a run
    assert not (folder / "adapter").exists()  # and keeps no weights (its worker removed them)
    files = sorted(p.name for p in folder.iterdir())
    assert jobs.estimate_from(folder, cfg) == est and sorted(p.name for p in folder.iterdir()) == files  # reads only


def test_queue_runs_one_job_at_a_time_in_order(workspace, tiny_model_dir, tiny_classification):
    first, second, third, fourth = (tune_job(workspace, tiny_model_dir, tiny_classification, s) for s in (6, 2, 2, 2))
    assert jobs.submit(first) == "started"
    assert [jobs.submit(r) for r in (second, third, fourth)] == ["queued"] * 3
    assert job_queue.queue(workspace) == [second.name, third.name, fourth.name]
    job_queue.move(workspace, third.name, 0)  # reorder: third goes next
    jobs.cancel(fourth)  # a waiting run is just taken out
    assert job_queue.queue(workspace) == [third.name, second.name]
    assert runs.read_status(fourth)["state"] == "cancelled"
    assert runs.read_status(second)["state"] == "queued"
    for r in (first, third, second):
        assert jobs.wait(r, poll=0.5, timeout=300)["state"] == "succeeded", runs.log_tail(r)
    started = {r.name: runs.read_status(r)["started"] for r in (first, third, second)}
    finished = {r.name: runs.read_status(r)["finished"] for r in (first, third, second)}
    assert finished[first.name] <= started[third.name] <= finished[third.name] <= started[second.name]
    assert job_queue.queue(workspace) == []


def test_an_evaluation_waits_for_the_tuning_run_and_compute_never_overlaps(workspace, tiny_model_dir,
                                                                         tiny_classification):
    """Every kind shares the device's queue: an evaluation submitted during a run starts when it ends."""
    train, ev = tiny_classification
    run = tune_job(workspace, tiny_model_dir, tiny_classification, 6)
    assert jobs.submit(run) == "started"
    evaluation = jobs.create_evaluation(workspace, EvalConfig(data=str(ev), task="classification",
                                                              model=str(tiny_model_dir), limit=4, device="cpu"))
    assert jobs.submit(evaluation) == "queued"
    later = tune_job(workspace, tiny_model_dir, tiny_classification, 2)
    assert jobs.submit(later) == "queued"
    assert job_queue.queue(workspace) == [evaluation.name, later.name]
    samples = []
    while runs.read_status(later)["state"] not in runs.FINAL_STATES:
        samples.append([runs.read_status(d)["state"] for d in (run, evaluation, later)])
        time.sleep(0.3)
    assert sum(s.count("running") > 1 for s in samples) == 0  # never two at once
    assert ["succeeded", "queued", "queued"] in samples or ["running", "queued", "queued"] in samples
    status = {d: runs.read_status(d) for d in (run, evaluation, later)}
    assert all(s["state"] == "succeeded" for s in status.values()), [runs.log_tail(d) for d in status]
    assert status[run]["finished"] <= status[evaluation]["started"]
    assert status[evaluation]["finished"] <= status[later]["started"]
    metrics = runs.read_json(evaluation / "metrics.json")
    assert metrics["base"]["evaluation_status"]["num_total_rows"] == 4


def test_resume_from_the_cli_after_a_cancel(workspace, tiny_model_dir, tiny_classification):
    from core.cli import main

    run_dir = start_long_run(workspace, tiny_model_dir, tiny_classification, until_step=1)
    jobs.cancel(run_dir)
    status = jobs.wait(run_dir, poll=0.5, timeout=120)
    assert status["state"] == "cancelled"
    cfg = runs.read_json(run_dir / "config.json")  # end two steps later, so the test stays short
    runs.write_json(run_dir / "config.json", {**cfg, "max_iterations": status["step"] + 2})
    assert main(["resume", run_dir.name, "--wait", "--workspace", str(workspace)]) == 0
    status = runs.read_status(run_dir)
    assert status["state"] == "succeeded" and status["step"] == status["resumed_from"] + 2
