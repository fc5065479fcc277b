"""Queued jobs on a Ray cluster (core.executor, core.ray_executor), against a local Ray head that this
module starts with one CPU and stops: a tuning job and an evaluation of it run there and write their
usual folders, a job still waiting on the cluster is cancelled through Ray Jobs, and a job that fails on
the cluster before the worker starts is recorded with Ray's own log."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray.job_submission", reason="the ray extra is not installed")

from core import executor, job_queue, jobs, runs  # noqa: E402
from core.config import EvalConfig, LoraSettings, TuneConfig  # noqa: E402
from core.templates import default_template  # noqa: E402

RAY = Path(sys.executable).parent / "ray"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_address(tmp_path_factory):
    """A one-CPU Ray head with its dashboard (Ray Jobs goes through it), its own ports, and a small object
    store; `--block` keeps it in one process group, which teardown ends (no `ray stop`: that would end
    every Ray cluster on the machine)."""
    from ray.job_submission import JobSubmissionClient

    temp = Path(f"/tmp/ray-{os.getpid()}")  # short: Ray's socket paths must stay under 108 bytes
    dashboard = free_port()
    ports = {"--port": free_port(), "--dashboard-port": dashboard, "--node-manager-port": free_port(),
             "--object-manager-port": free_port(), "--dashboard-agent-grpc-port": free_port(),
             "--dashboard-agent-listen-port": free_port(), "--metrics-export-port": free_port(),
             "--runtime-env-agent-port": free_port(), "--ray-client-server-port": free_port()}
    command = [str(RAY), "start", "--head", "--block", "--num-cpus", "1", "--num-gpus", "0",
               "--object-store-memory", "100000000", "--include-dashboard", "true", "--disable-usage-stats",
               "--dashboard-host", "127.0.0.1", "--temp-dir", str(temp),
               *[str(x) for pair in ports.items() for x in pair]]
    log = open(tmp_path_factory.mktemp("ray") / "head.log", "wb")
    head = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                JobSubmissionClient(address).list_jobs()
                break
            except Exception:
                if head.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"the Ray head did not start: {Path(log.name).read_text()[-2000:]}")
                time.sleep(1)
        yield address
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # the head and every Ray process it started (one process group)
        try:
            head.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)  # what did not stop in time (nothing of the test runs there now)
        except ProcessLookupError:
            pass
        head.wait()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def on_ray(workspace, ray_address, monkeypatch):
    monkeypatch.setenv("STUDIO_RAY_WATCH_PATIENCE", "30")  # a watcher left by a failed test ends soon
    executor.write_setting(workspace, executor.ray_setting(ray_address, slots=2, gpus_per_job=0, cpus_per_job=1))
    return workspace


def tiny_tune(model_dir, train, ev, steps=4) -> TuneConfig:
    return TuneConfig(task="classification", train_file=str(train), eval_file=str(ev), model=str(model_dir),
                      template=default_template("classification", ["games", "math"]), labels=["games", "math"],
                      max_iterations=steps, eval_every=2, learning_rate=5e-3, batch_size=4, max_seq_length=256,
                      lora=LoraSettings(rank=4, alpha=8), device="cpu")


def wait_for(predicate, timeout=120, what="the condition"):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_ray_runs_a_tuning_and_an_evaluation_job_and_cancels_one(on_ray, ray_address, tiny_model_dir,
                                                                 tiny_classification):
    from ray.job_submission import JobSubmissionClient

    ws, (train, ev) = on_ray, tiny_classification
    started = time.time()
    tune = jobs.create_tune(ws, tiny_tune(tiny_model_dir, train, ev))
    spare = jobs.create_tune(ws, tiny_tune(tiny_model_dir, train, ev, steps=50))
    evaluation = jobs.create_evaluation(ws, EvalConfig(data=str(ev), task="classification", run_id=tune.name,
                                                       limit=4, device="cpu"))
    # Two slots: the tuning job runs on the cluster's one CPU, the spare one waits there; the evaluation
    # waits in the studio's queue.
    assert [jobs.submit(d) for d in (tune, spare, evaluation)] == ["started", "started", "queued"]
    ray = JobSubmissionClient(ray_address)
    spare_id = runs.read_status(spare)["ray_job"]
    wait_for(lambda: ray.get_job_status(spare_id) == "PENDING", what="the spare job to wait on the cluster")
    jobs.cancel(spare)  # not started anywhere yet: the cluster is told to stop it
    status = jobs.wait(spare, poll=0.3, timeout=120)
    assert status["state"] == "cancelled" and "before it started" in status["hint"]
    assert ray.get_job_status(spare_id) == "STOPPED" and not status.get("started")

    status = jobs.wait(tune, poll=0.5, timeout=240)
    tune_seconds = time.time() - started
    assert status["state"] == "succeeded", (status, runs.log_tail(tune, 40))
    assert status["step"] == 4 and status["executor"] == "ray"
    assert ray.get_job_status(status["ray_job"]) == "SUCCEEDED"
    assert [m["step"] for m in runs.read_metrics(tune) if "loss" in m] == [1, 2, 3, 4]
    assert (tune / "adapter" / "adapter_model.safetensors").exists()
    assert "submitted to the Ray cluster" in (tune / "worker.log").read_text()

    # The cancelled job freed its slot, so the evaluation went to the cluster and ran after the tuning job.
    status = jobs.wait(evaluation, poll=0.5, timeout=240)
    assert status["state"] == "succeeded", (status, runs.log_tail(evaluation, 40))
    assert evaluation.parent.parent == tune  # runs/<run>/evals/<id>/: the run's own folder
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert set(metrics) >= {"base", "tuned"} and metrics["rows"] == 4
    wait_for(lambda: not job_queue.started(ws) and not job_queue.waiting(ws), timeout=30, what="an empty queue")
    print(f"\ntuning job through Ray: {tune_seconds:.1f} s from submission to succeeded")


def test_a_job_that_fails_on_the_cluster_is_recorded_with_rays_log(on_ray, tmp_path, tiny_model_dir,
                                                                   tiny_classification):
    setting = {**executor.read_setting(on_ray), "python": str(tmp_path / "no-python-here")}
    executor.write_setting(on_ray, setting, check=False)
    run = jobs.create_tune(on_ray, tiny_tune(tiny_model_dir, *tiny_classification))
    assert jobs.submit(run) == "started"
    status = jobs.wait(run, poll=0.3, timeout=120)
    assert status["state"] == "failed" and "on the Ray cluster as FAILED" in status["error"]
    assert "no-python-here" in (run / "worker.log").read_text()  # the shell's own complaint on the node
    wait_for(lambda: not job_queue.started(on_ray), timeout=30, what="the queue to let it go")


def test_an_unreachable_cluster_fails_the_job_not_the_queue(workspace, tiny_model_dir, tiny_classification):
    executor.write_setting(workspace, executor.ray_setting(f"127.0.0.1:{free_port()}", gpus_per_job=0), check=False)
    run = jobs.create_tune(workspace, tiny_tune(tiny_model_dir, *tiny_classification))
    jobs.submit(run)
    status = runs.read_status(run)
    assert status["state"] == "failed" and "Could not submit to the Ray cluster" in status["error"]
    assert "studio executor local" in status["hint"] and job_queue.started(workspace) == []
    with pytest.raises(ConnectionError, match="no Ray cluster answers"):
        executor.write_setting(workspace, executor.ray_setting(f"127.0.0.1:{free_port()}"))
    with pytest.raises(executor.ExecutorError, match="needs the cluster's address"):
        executor.ray_setting("")
