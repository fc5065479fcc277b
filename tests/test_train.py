"""Tuning on the tiny random model, in process: the adapter moves, the base does not, and the run
folder holds what the UI and plain peft need."""
import pytest
import torch
from safetensors.torch import load_file

from core import runs
from core.config import LoraSettings, TuneConfig
from core.templates import default_template
from core.train import run_tuning
from core.worker import run_job


def tiny_config(model_dir, train, ev, steps=6, eval_every=3, **kw) -> dict:
    return TuneConfig(task="classification", train_file=str(train), eval_file=str(ev), model=str(model_dir),
                      template=default_template("classification", ["games", "math"]), labels=["games", "math"],
                      max_iterations=steps, learning_rate=5e-3, batch_size=4, max_seq_length=256, eval_every=eval_every,
                      lora=LoraSettings(rank=4, alpha=8), device="cpu", **kw).to_dict()


def test_tuning_moves_adapter_not_base_and_writes_the_run_folder(workspace, tiny_model_dir, tiny_classification):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run_dir = runs.create_run(workspace, tiny_config(tiny_model_dir, *tiny_classification))
    model = run_tuning(run_dir)

    base = load_file(tiny_model_dir / "model.safetensors")
    tuned = {k: v for k, v in model.state_dict().items()}
    # Base weights: unchanged (every non-LoRA tensor equals the file it came from, in the precision it
    # trained in: bf16 weights where the CPU has bf16).
    for name, before in base.items():
        key = next(k for k in tuned if k.endswith(name.replace(".weight", ".base_layer.weight")) or
                   (k.endswith(name) and "lora_" not in k))
        assert torch.equal(tuned[key], before.to(tuned[key].dtype)), name
    assert all(v.dtype == torch.float32 for k, v in tuned.items() if "lora_" in k)  # the adapter learns in fp32
    # Adapter weights: LoRA B starts at zero, so any non-zero B means training moved it.
    lora_b = [v for k, v in tuned.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)

    status = runs.read_status(run_dir)
    assert status["state"] == "succeeded" and status["step"] == 6
    metrics = runs.read_metrics(run_dir)
    train_lines = [m for m in metrics if "loss" in m]
    assert [m["step"] for m in train_lines] == [1, 2, 3, 4, 5, 6]
    assert all(m["tokens_per_s"] > 0 and m["learning_rate"] is not None for m in train_lines)
    assert [m["step"] for m in metrics if "eval_loss" in m] == [3, 6]

    # The adapter is standard PEFT: plain peft loads it onto a fresh base, with the trained weights.
    fresh = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), run_dir / "adapter")
    fresh_sd = fresh.state_dict()
    for k, v in tuned.items():
        if "lora_" in k:
            assert torch.equal(fresh_sd[k], v), k
    x = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        with fresh.disable_adapter():
            base_logits = fresh(x).logits
        assert not torch.allclose(fresh(x).logits, base_logits)  # the adapter changes the answer


def test_loss_goes_down_on_a_learnable_task(workspace, tiny_model_dir, tiny_classification):
    run_dir = runs.create_run(workspace, tiny_config(tiny_model_dir, *tiny_classification, steps=30))
    run_tuning(run_dir)
    losses = [m["loss"] for m in runs.read_metrics(run_dir) if "loss" in m]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5


def test_failure_is_recorded_with_its_cause(workspace, tiny_model_dir, tiny_classification, tmp_path):
    cfg = tiny_config(tiny_model_dir, *tiny_classification)
    cfg["train_file"] = str(tmp_path / "gone.jsonl")
    run_dir = runs.create_run(workspace, cfg)
    try:
        run_job(run_dir)
    except Exception:
        pass
    status = runs.read_status(run_dir)
    assert status["state"] == "failed"
    assert "gone.jsonl" in status["error"] and "file not found" in status["error"]
    assert status["hint"]


def test_fast_step_gives_trls_loss_and_gradients(tiny_model_dir, tiny_classification):
    """The studio's step (answer positions only through the LM head, the shared prompt prefix run once)
    is TRL's loss on the same batch, and moves the adapter the same way."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from core.models import load_tokenizer
    from core.sft_step import fast_sft_trainer, shared_prefix_length
    from core.train import build_examples

    tok = load_tokenizer(str(tiny_model_dir))
    cfg = TuneConfig.from_dict(tiny_config(tiny_model_dir, *tiny_classification))
    rows, _ = build_examples(cfg, tok)
    results = {}
    for cls in (SFTTrainer, fast_sft_trainer()):
        torch.manual_seed(0)
        args = SFTConfig(output_dir="/tmp/unused", per_device_train_batch_size=4, report_to="none", use_cpu=True,
                         max_length=256, save_strategy="no")
        trainer = cls(model=AutoModelForCausalLM.from_pretrained(tiny_model_dir), args=args, processing_class=tok,
                      peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"),
                      train_dataset=Dataset.from_list(rows))
        batch = dict(next(iter(trainer.get_train_dataloader())))
        trainer.model.train()
        loss = trainer.compute_loss(trainer.model, batch)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
        results[cls.__name__] = loss.item(), grads, batch
        assert trainer._metrics["train"]["mean_token_accuracy"]
    (trl_loss, trl_grads, batch), (fast_loss, fast_grads, _) = results["SFTTrainer"], results["FastSFTTrainer"]
    prefix = shared_prefix_length(batch["input_ids"], batch.get("attention_mask"), batch["labels"])
    assert prefix >= 10  # the template's shared prefix really took the shortcut
    assert (batch["attention_mask"] == 0).any()  # ... on a batch with padding
    assert fast_loss == pytest.approx(trl_loss, rel=1e-5)
    assert trl_grads.keys() == fast_grads.keys() and trl_grads
    for name, g in trl_grads.items():
        assert torch.allclose(fast_grads[name], g, rtol=1e-4, atol=1e-6), name


def test_a_long_batch_in_several_passes_moves_the_adapter_as_one_pass(tiny_model_dir, tiny_classification,
                                                                      monkeypatch):
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig

    import core.sft_step as sft_step
    from core.models import load_tokenizer
    from core.train import build_examples

    tok = load_tokenizer(str(tiny_model_dir))
    cfg = TuneConfig.from_dict(tiny_config(tiny_model_dir, *tiny_classification))
    rows, _ = build_examples(cfg, tok)
    grads, losses = [], []
    for budget in (100_000, 1):  # everything in one pass; every row a pass of its own
        monkeypatch.setattr(sft_step, "TOKENS_PER_PASS", budget)
        torch.manual_seed(0)
        args = SFTConfig(output_dir="/tmp/unused", per_device_train_batch_size=4, report_to="none", use_cpu=True,
                         max_length=256, save_strategy="no", bf16=False)
        trainer = sft_step.fast_sft_trainer()(
            model=AutoModelForCausalLM.from_pretrained(tiny_model_dir), args=args, processing_class=tok,
            peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"),
            train_dataset=Dataset.from_list(rows))
        trainer.create_optimizer_and_scheduler(num_training_steps=1)
        trainer.current_gradient_accumulation_steps = 1  # set by the training loop
        batch = dict(next(iter(trainer.get_train_dataloader())))
        assert len(sft_step.row_groups(batch["attention_mask"])) == (1 if budget > 1000 else 4)
        losses.append(float(trainer.training_step(trainer.model, batch)))
        grads.append({n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None})
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    for name, g in grads[0].items():
        assert torch.allclose(grads[1][name], g, rtol=1e-4, atol=1e-6), name


def test_shared_prefix_stops_before_the_first_answer_and_needs_right_padding():
    from core.sft_step import shared_prefix_length

    ids = torch.tensor([[1, 2, 3, 4, 5, 6], [1, 2, 3, 9, 9, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]])
    labels = torch.tensor([[-100] * 4 + [5, 6], [-100] * 4 + [9, -100]])
    assert shared_prefix_length(ids, mask, labels) == 3
    early = labels.clone()
    early[1, 2:5] = torch.tensor([3, 9, 9])  # an answer starting at position 2: position 1 predicts it
    assert shared_prefix_length(ids, mask, early) == 1
    assert shared_prefix_length(ids, torch.tensor([[1] * 6, [0, 1, 1, 1, 1, 1]]), labels) == 0  # left padding
    assert shared_prefix_length(ids[:1], mask[:1], labels[:1]) == 0  # one row: nothing to share


def test_fewer_than_ten_training_examples_fail_with_a_clear_cause(workspace, tiny_model_dir, tmp_path):
    import json

    path = tmp_path / "few.jsonl"
    path.write_text("".join(json.dumps({"input_text": f"t{i}", "output_text": "games"}) + "\n" for i in range(9)))
    cfg = tiny_config(tiny_model_dir, path, path)
    run_dir = runs.create_run(workspace, cfg)
    with pytest.raises(Exception):
        run_job(run_dir)
    status = runs.read_status(run_dir)
    assert status["state"] == "failed" and "only 9 training examples" in status["error"]


def test_resume_continues_to_the_same_final_step_with_optimizer_state(workspace, tiny_model_dir,
                                                                     tiny_classification, monkeypatch):
    """A run stopped after step 4 and resumed ends at step 8 with the losses of an uninterrupted run."""
    import core.train as train_mod
    from core.monitor import make_callback
    from core.names import CANCEL_FILE
    from core.runs import last_checkpoint

    straight = runs.create_run(workspace, tiny_config(tiny_model_dir, *tiny_classification, steps=8, eval_every=4))
    run_tuning(straight)
    stopped = runs.create_run(workspace, tiny_config(tiny_model_dir, *tiny_classification, steps=8, eval_every=4))

    def cancel_after_step_4(*a, **k):  # what `studio cancel` does, at a known step
        cb = make_callback(*a, **k)
        step_end = cb.on_step_end

        def on_step_end(args, state, control, **kw):
            if state.global_step == 4:
                (stopped / CANCEL_FILE).touch()
            return step_end(args, state, control, **kw)
        cb.on_step_end = on_step_end
        return cb

    with monkeypatch.context() as m:
        m.setattr(train_mod, "make_callback", cancel_after_step_4)
        run_tuning(stopped)
    assert runs.read_status(stopped)["state"] == "cancelled" and runs.read_status(stopped)["step"] == 4
    ckpt = last_checkpoint(stopped)
    assert ckpt.name == "checkpoint-4" and (ckpt / "optimizer.pt").exists() and (ckpt / "scheduler.pt").exists()
    assert (ckpt / "checkpoint-complete").exists()
    # A worker killed while writing a later checkpoint: the folder holds its first file only, and the
    # metrics file a step logged after the checkpoint plus a torn line.
    torn = stopped / "checkpoints" / "checkpoint-6"
    torn.mkdir()
    (torn / "README.md").write_text("partial")
    runs.append_metrics(stopped, {"step": 5, "time": 99.0, "loss": 9.9})
    with open(stopped / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "lo')
    assert last_checkpoint(stopped).name == "checkpoint-4"  # the newest complete one

    run_tuning(stopped, resume=True)
    status = runs.read_status(stopped)
    assert status["state"] == "succeeded" and status["step"] == 8 and status["resumed_from"] == 4
    loss = lambda d: {m["step"]: m["loss"] for m in runs.read_metrics(d) if "loss" in m}  # noqa: E731
    a, b = loss(straight), loss(stopped)
    assert [m["step"] for m in runs.read_metrics(stopped) if "loss" in m] == list(range(1, 9))  # each step once
    for step in range(5, 9):  # same data order, same optimizer moments: the same losses after resuming
        assert b[step] == pytest.approx(a[step], rel=1e-3), step


def test_early_stopping_and_best_checkpoint(workspace, tiny_model_dir, tiny_classification):
    """With a learning rate that makes eval loss climb, tuning stops early and keeps the best step."""
    cfg = tiny_config(tiny_model_dir, *tiny_classification, steps=40, eval_every=2)
    run_dir = runs.create_run(workspace, {**cfg, "learning_rate": 0.5, "early_stopping_patience": 2})
    run_tuning(run_dir)
    status = runs.read_status(run_dir)
    evals = {m["step"]: m["eval_loss"] for m in runs.read_metrics(run_dir) if "eval_loss" in m}
    assert status["stopped_early"] and status["step"] < 40
    best_step = min(evals, key=evals.get)
    assert status["best_step"] == best_step and status["best_eval_loss"] == pytest.approx(evals[best_step])
    # The saved adapter is the best checkpoint's, not the last step's.
    from safetensors.torch import load_file
    saved = load_file(run_dir / "adapter" / "adapter_model.safetensors")
    best = load_file(run_dir / "checkpoints" / f"checkpoint-{best_step}" / "adapter_model.safetensors")
    assert all(torch.equal(saved[k], best[k]) for k in best)


def test_eval_samples_show_answers_at_each_eval_point(workspace, tiny_model_dir, tiny_classification):
    from core.monitor import read_samples

    run_dir = runs.create_run(workspace, tiny_config(tiny_model_dir, *tiny_classification, steps=4, eval_every=2))
    run_tuning(run_dir)
    samples = read_samples(run_dir)
    assert [s["step"] for s in samples] == [2, 2, 2, 4, 4, 4]
    assert all(s["reference"] in ("games", "math") and isinstance(s["answer"], str) for s in samples)


def test_out_of_memory_surfaces_its_advice(workspace, tiny_model_dir, tiny_classification, monkeypatch):
    import core.train as train_mod

    base = train_mod.fast_sft_trainer

    def oom_trainer():
        cls = base()

        class OOM(cls):
            def compute_loss(self, *a, **k):
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return OOM

    monkeypatch.setattr(train_mod, "fast_sft_trainer", oom_trainer)
    run_dir = runs.create_run(workspace, tiny_config(tiny_model_dir, *tiny_classification))
    with pytest.raises(torch.OutOfMemoryError):
        run_job(run_dir)
    status = runs.read_status(run_dir)
    assert status["state"] == "failed" and "out of memory" in status["error"].lower()
    assert "batch size" in status["hint"] and "max sequence length" in status["hint"]


def test_dpo_run_from_a_labeling_queue(workspace, tiny_model_dir, tiny_classification):
    """Pairs curated in the store tune with DPO; reward accuracy and margins are logged like any curve."""
    import json

    from core import preferences

    rows = [json.loads(x) for x in tiny_classification[0].read_text().splitlines()]
    other = {"games": "math", "math": "games"}
    preferences.add_pairs(workspace, "pairs", [{"prompt": r["input_text"], "answer_a": r["output_text"],
                                                "answer_b": other[r["output_text"]]} for r in rows * 2])
    for item in range(1, 33):
        shown = "second" if preferences.flipped(item, "ann") else "first"  # always the right label
        preferences.submit(workspace, item, "ann", shown)
    cfg = {**tiny_config(tiny_model_dir, *tiny_classification, steps=4, eval_every=2),
           "method": "dpo", "beta": 0.1, "preference_queue": "pairs", "eval_file": None, "eval_samples": 1}
    run_dir = runs.create_run(workspace, cfg)
    run_tuning(run_dir)
    status = runs.read_status(run_dir)
    assert status["state"] == "succeeded" and status["train_rows"] == 29 and status["eval_rows"] == 3
    metrics = runs.read_metrics(run_dir)
    assert any("rewards_accuracies" in m for m in metrics)
    assert any("eval_rewards_accuracies" in m for m in metrics)
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()


def test_base_pane_really_runs_without_the_adapter(workspace, tiny_model_dir, tiny_classification):
    """Base and tuned share one PeftModel; inside disable_adapter() it computes exactly the base model."""
    from transformers import AutoModelForCausalLM

    from core.models import load_model

    run_dir = runs.create_run(workspace, tiny_config(tiny_model_dir, *tiny_classification, steps=3))
    run_tuning(run_dir)
    shared, _, _ = load_model(str(tiny_model_dir), workspace, "cpu", adapter=run_dir / "adapter",
                                dtype=torch.float32)  # exact comparison with the fp32 reference
    plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    x = torch.tensor([[5, 17, 42, 7, 99]])
    with torch.no_grad():
        tuned = shared(x).logits
        with shared.disable_adapter():
            base = shared(x).logits
        reference = plain(x).logits
    assert torch.allclose(base, reference, atol=1e-6)
    assert not torch.allclose(tuned, reference, atol=1e-4)


def test_dpo_on_top_of_a_supervised_run(workspace, tiny_model_dir, tiny_classification, tmp_path):
    """`run:RUN_ID` names a finished run as a base model: its adapter merged in, once."""
    import json

    from core.models import load_model, resolve_model

    sft = runs.create_run(workspace, tiny_config(tiny_model_dir, *tiny_classification, steps=3))
    run_tuning(sft)
    rows = [json.loads(x) for x in tiny_classification[0].read_text().splitlines()]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": r["input_text"], "chosen": r["output_text"],
                                         "rejected": "games" if r["output_text"] == "math" else "math"}) + "\n"
                             for r in rows))
    cfg = {**tiny_config(tiny_model_dir, pairs, pairs, steps=2, eval_every=2), "method": "dpo",
           "model": f"run:{sft.name}", "eval_file": None}
    dpo = runs.create_run(workspace, cfg)
    run_tuning(dpo)
    assert runs.read_status(dpo)["state"] == "succeeded"
    merged = resolve_model(f"run:{sft.name}", workspace)
    assert merged.endswith(f"merged-{sft.name}")
    # The merged base equals the supervised run (base + adapter) on the same input.
    exact = torch.float32  # compared to 1e-4: not in bf16
    tuned, _, _ = load_model(str(tiny_model_dir), workspace, "cpu", adapter=sft / "adapter", dtype=exact)
    plain, _, _ = load_model(f"run:{sft.name}", workspace, "cpu", dtype=exact)
    x = torch.tensor([[3, 14, 15, 92]])
    with torch.no_grad():
        assert torch.allclose(tuned(x).logits, plain(x).logits, atol=1e-4)
    # ...and the DPO run loads for generation like any other run.
    load_model(f"run:{sft.name}", workspace, "cpu", adapter=dpo / "adapter")


def test_the_status_says_when_a_run_evaluates_or_saves(workspace, tiny_model_dir, tiny_classification):
    """A page polling status.json sees the phase of the moment, not "training" through an eval pass."""
    from core.monitor import Worker

    seen = []

    class Recording(Worker):
        def status(self, **fields):
            if "phase" in fields:
                seen.append((fields.get("step"), fields["phase"]))
            return super().status(**fields)

    run_dir = runs.create_run(workspace, tiny_config(tiny_model_dir, *tiny_classification, steps=4, eval_every=2))
    run_tuning(run_dir, worker=Recording(run_dir))
    phases = [p for _, p in seen]
    assert (2, "evaluating: eval loss and answers") in seen and (1, "training") in seen
    assert "saving the adapter" in phases and phases[-1] == "done"
