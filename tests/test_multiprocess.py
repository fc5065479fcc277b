"""One tuning job as several processes (core.launch): the queue starts it under torchrun, two CPU
processes train it data parallel over gloo, only rank 0 writes the run folder, a cancel stops both
with a checkpoint and a resume finishes the run; its adapter is the one-process run's kind. Also the
queue's rules for such a job and the Tune page's choice of GPUs (offered only with several)."""
import json
import os

import pytest
import torch
from safetensors.torch import load_file

from core import job_queue, jobs, launch, runs
from core.config import ConfigError, LoraSettings, TuneConfig
from core.names import CANCEL_FILE
from core.templates import default_template
from core.train import run_tuning


def tiny_config(model_dir, train, ev, **kw) -> TuneConfig:
    settings = dict(max_iterations=4, eval_every=2, batch_size=4, learning_rate=5e-3, max_seq_length=256,
                    lora=LoraSettings(rank=4, alpha=8), device="cpu")
    return TuneConfig(task="classification", train_file=str(train), eval_file=str(ev), model=str(model_dir),
                      template=default_template("classification", ["games", "math"]), labels=["games", "math"],
                      **{**settings, **kw})


def train_losses(run_dir) -> dict[int, float]:
    return {m["step"]: m["loss"] for m in runs.read_metrics(run_dir) if "loss" in m}


def test_two_gloo_processes_train_cancel_resume_into_one_run_folder(workspace, tiny_model_dir, tiny_classification):
    run_dir = jobs.create_tune(workspace, tiny_config(tiny_model_dir, *tiny_classification, processes=2))
    (run_dir / CANCEL_FILE).touch()  # a cancel sent before the start: both processes stop after step 1
    assert jobs.submit(run_dir) == "started"
    status = jobs.wait(run_dir, poll=0.5, timeout=300)
    log = (run_dir / "worker.log").read_text()
    assert status["state"] == "cancelled", (status, log[-3000:])
    assert status["step"] == 1 and status["processes"] == 2
    checkpoint = runs.last_checkpoint(run_dir)
    assert checkpoint.name == "checkpoint-1"
    assert (checkpoint / "rng_state_0.pth").exists() and (checkpoint / "rng_state_1.pth").exists()  # each rank's

    assert jobs.resume(run_dir) == "started"
    status = jobs.wait(run_dir, poll=0.5, timeout=300)
    log = (run_dir / "worker.log").read_text()
    assert status["state"] == "succeeded", (status, log[-3000:])
    assert status["step"] == 4 and status["resumed_from"] == 1 and status["processes"] == 2
    # One consistent folder: every step logged once (by rank 0 alone), eval at 2 and 4, samples once per eval.
    metrics = runs.read_metrics(run_dir)
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2, 3, 4]
    assert [m["step"] for m in metrics if "eval_loss" in m] == [2, 4]
    samples = [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert sorted({s["step"] for s in samples}) == [2, 4] and len(samples) == 2 * 3
    assert job_queue.started(workspace) == [] and job_queue.waiting(workspace) == []

    # The same run with one process, in process: the same losses from the same batches (each rank takes half
    # of every batch; after the resume too), and an adapter of the same format that plain peft loads.
    single = runs.create_run(workspace, tiny_config(tiny_model_dir, *tiny_classification).to_dict())
    run_tuning(single)
    one_process = train_losses(single)
    assert train_losses(run_dir) == pytest.approx(one_process, rel=1e-3)  # the same four steps
    two, one = run_dir / "adapter", single / "adapter"
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    config_two, config_one = (json.loads((d / "adapter_config.json").read_text()) for d in (two, one))
    for config in (config_two, config_one):  # peft writes the module set in no fixed order
        config["target_modules"] = sorted(config["target_modules"])
    assert config_two == config_one
    weights_two, weights_one = load_file(two / "adapter_model.safetensors"), load_file(one / "adapter_model.safetensors")
    assert {k: (v.shape, v.dtype) for k, v in weights_two.items()} == {k: (v.shape, v.dtype) for k, v in weights_one.items()}
    assert all(v.abs().sum() > 0 for k, v in weights_two.items() if "lora_B" in k)  # trained, not the zero init

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), two)
    x = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        with tuned.disable_adapter():
            base_logits = tuned(x).logits
        assert not torch.allclose(tuned(x).logits, base_logits)


def test_launch_command_threads_and_clear_errors(monkeypatch):
    assert launch.worker_command("/w/runs/r", 1, python="py") == ["py", "-m", "core.worker", "/w/runs/r"]
    command = launch.worker_command("/w/runs/r", 2, python="py")
    assert command[:3] == ["py", "-m", "torch.distributed.run"] and "--standalone" in command
    assert command[command.index("--nproc_per_node") + 1] == "2" and command[-3:] == ["-m", "core.worker", "/w/runs/r"]
    env = launch.process_env({launch.THREADS_ENV: "8"}, 2)
    assert env[launch.THREADS_ENV] == env["OMP_NUM_THREADS"] == "4"  # the job's threads, shared out
    assert launch.process_env({launch.THREADS_ENV: "8"}, 1)[launch.THREADS_ENV] == "8"
    assert launch.processes_of({"kind": "tune", "config": {"processes": 2}}) == 2
    assert launch.processes_of({"kind": "evaluate", "config": {"processes": 2}}) == 1  # only training kinds

    monkeypatch.setattr(launch, "gpu_count", lambda: 1)
    with pytest.raises(ValueError, match="asks for 2 processes.*has 1 GPUs"):
        launch.check_processes(2, "cuda")
    with pytest.raises(ConfigError, match="batch_size 6 must be a multiple of processes"):
        TuneConfig(task="classification", train_file="t.jsonl", template="{input_text}", batch_size=6, processes=4)
    with pytest.raises(ConfigError, match="processes must be 1..64"):
        TuneConfig(task="classification", train_file="t.jsonl", template="{input_text}", processes=0)
    assert launch.max_processes("mps") == 1


def test_a_job_of_several_processes_has_the_device_to_itself(workspace, monkeypatch, tmp_path):
    """Two jobs may share a GPU (STUDIO_JOBS_PER_GPU=2), but a 2-process job waits until the GPU is free, the
    jobs behind it wait behind it, and nothing starts beside it. No worker runs: launches are recorded."""
    monkeypatch.setenv(job_queue.SLOTS_ENV, "2")
    launched = []

    class Launched:
        pid = os.getpid()  # alive, so the queue sees the job on its device

    monkeypatch.setattr(job_queue, "_spawn", lambda job_dir, device: launched.append(job_dir.name) or Launched())
    train = tmp_path / "t.jsonl"
    make = lambda n: jobs.create_tune(workspace, TuneConfig(  # noqa: E731
        task="classification", train_file=str(train), template="{input_text}", device="cuda", processes=n))
    first, wide, after = make(1), make(2), make(1)
    assert [jobs.submit(d) for d in (first, wide, after)] == ["started", "queued", "queued"]
    assert launched == [first.name]  # a slot is free, but the 2-process job needs the whole GPU

    runs.update_status(first, state="succeeded")
    job_queue.start_next(workspace)
    assert launched == [first.name, wide.name]  # the one behind it does not start beside it
    runs.update_status(wide, state="succeeded")
    job_queue.start_next(workspace)
    assert launched == [first.name, wide.name, after.name]


def test_tune_page_offers_gpus_only_on_a_machine_with_several(ws, monkeypatch):
    from studio import tune_form
    from tests.conftest import open_page

    for gpus, offered in ((0, False), (4, True)):
        monkeypatch.setattr(tune_form, "gpu_count", lambda gpus=gpus: gpus)
        at = open_page("tune")
        assert any(s.label == "GPUs (processes)" for s in at.selectbox) is offered
        if offered:
            choice = next(s for s in at.selectbox if s.label == "GPUs (processes)")
            assert choice.options == ["1", "2", "3", "4"] and choice.value == 4  # all four: batch 8 splits over 4
