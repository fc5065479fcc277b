"""The worker as its own process: it finishes on its own, and a worker killed with SIGKILL is seen as failed."""
import os
import signal
import time

from core import jobs, runs
from test_train import tiny_config


def start_long_run(workspace, model_dir, data, until_step):
    """A 2000-step worker, returned once it has done `until_step` steps."""
    run_dir = runs.create_run(workspace, tiny_config(model_dir, *data, steps=2000))
    jobs.start_tuning(run_dir)
    deadline = time.time() + 240
    while runs.read_status(run_dir).get("step", 0) < until_step and time.time() < deadline:
        time.sleep(0.5)
    return run_dir


def test_worker_process_runs_to_success(workspace, tiny_model_dir, tiny_classification):
    run_dir = runs.create_run(workspace, tiny_config(tiny_model_dir, *tiny_classification, steps=4))
    jobs.start_tuning(run_dir)
    seen = []
    status = jobs.wait(run_dir, lambda st, new: seen.extend(new), poll=0.5, timeout=300)
    assert status["state"] == "succeeded", runs.log_tail(run_dir)
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()
    assert any("loss" in m for m in seen)


def test_cancel_keeps_the_adapter_so_far(workspace, tiny_model_dir, tiny_classification):
    run_dir = start_long_run(workspace, tiny_model_dir, tiny_classification, until_step=2)
    jobs.cancel(run_dir)
    status = jobs.wait(run_dir, poll=0.5, timeout=120)
    assert status["state"] == "cancelled" and 2 <= status["step"] < 2000
    assert (run_dir / "adapter" / "adapter_config.json").exists()


def test_sigkilled_worker_is_detected(workspace, tiny_model_dir, tiny_classification):
    run_dir = start_long_run(workspace, tiny_model_dir, tiny_classification, until_step=1)
    os.kill(runs.read_status(run_dir)["pid"], signal.SIGKILL)
    killed = time.time()
    while runs.read_status(run_dir)["state"] == "running" and time.time() - killed < 30:
        time.sleep(0.5)
    status = runs.read_status(run_dir)
    assert status["state"] == "failed" and "stopped unexpectedly" in status["error"]
    assert time.time() - killed < 3 * runs.HEARTBEAT_EVERY


def test_speed_estimate_is_measured_from_real_steps(workspace, tiny_model_dir, tiny_classification):
    cfg = tiny_config(tiny_model_dir, *tiny_classification, steps=200)
    folder = jobs.start_estimate(workspace, cfg)
    jobs.wait(folder, poll=0.5, timeout=300)
    est = jobs.estimate_from(folder, cfg)
    assert "error" not in est, est
    times = [m["time"] for m in runs.read_metrics(folder) if "loss" in m]
    assert len(times) == jobs.ESTIMATE_STEPS and est["seconds_per_step"] > 0
    assert est["total_seconds"] >= 200 * est["seconds_per_step"] * 0.99  # evals add to the steps
    assert est["peak_memory_mb"] > 100
    assert runs.list_runs(workspace) == []  # a trial is not a run
    assert not (folder / "adapter").exists()  # and keeps no weights


def test_queue_runs_one_job_at_a_time_in_order(workspace, tiny_model_dir, tiny_classification):
    first = runs.create_run(workspace, tiny_config(tiny_model_dir, *tiny_classification, steps=6))
    second = runs.create_run(workspace, tiny_config(tiny_model_dir, *tiny_classification, steps=2))
    third = runs.create_run(workspace, tiny_config(tiny_model_dir, *tiny_classification, steps=2))
    fourth = runs.create_run(workspace, tiny_config(tiny_model_dir, *tiny_classification, steps=2))
    assert jobs.submit(first) == "started"
    assert [jobs.submit(r) for r in (second, third, fourth)] == ["queued"] * 3
    assert jobs.queue(workspace) == [second.name, third.name, fourth.name]
    jobs.move_in_queue(workspace, third.name, 0)  # reorder: third goes next
    jobs.cancel(fourth)  # a waiting run is just taken out
    assert jobs.queue(workspace) == [third.name, second.name]
    assert runs.read_status(fourth)["state"] == "cancelled"
    assert runs.read_status(second)["state"] == "queued"
    for r in (first, third, second):
        assert jobs.wait(r, poll=0.5, timeout=300)["state"] == "succeeded", runs.log_tail(r)
    started = {r.name: runs.read_status(r)["started"] for r in (first, third, second)}
    finished = {r.name: runs.read_status(r)["finished"] for r in (first, third, second)}
    assert finished[first.name] <= started[third.name] <= finished[third.name] <= started[second.name]
    assert jobs.queue(workspace) == []


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
