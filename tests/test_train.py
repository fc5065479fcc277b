"""Tuning on the tiny random model, in process: the adapter moves, the base does not, and the run
folder holds what the UI and plain peft need."""
import pytest
import torch
from safetensors.torch import load_file

from core import runs
from core.config import LoraSettings, TuneConfig
from core.templates import default_template
from core.train import run_tuning


def tiny_config(model_dir, train, ev, steps=6, **kw) -> dict:
    return TuneConfig(task="classification", train_file=str(train), eval_file=str(ev), model=str(model_dir),
                      template=default_template("classification", ["games", "math"]), labels=["games", "math"],
                      max_iterations=steps, learning_rate=5e-3, batch_size=4, max_seq_length=256, eval_every=3,
                      lora=LoraSettings(rank=4, alpha=8), device="cpu", **kw).to_dict()


def test_tuning_moves_adapter_not_base_and_writes_the_run_folder(workspace, tiny_model_dir, tiny_classification):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run_dir = runs.create_run(workspace, tiny_config(tiny_model_dir, *tiny_classification))
    model = run_tuning(run_dir)

    base = load_file(tiny_model_dir / "model.safetensors")
    tuned = {k: v for k, v in model.state_dict().items()}
    # Base weights: unchanged (every non-LoRA tensor equals the file it came from).
    for name, before in base.items():
        key = next(k for k in tuned if k.endswith(name.replace(".weight", ".base_layer.weight")) or
                   (k.endswith(name) and "lora_" not in k))
        assert torch.equal(tuned[key].float(), before.float()), name
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
        run_tuning(run_dir)
    except Exception:
        pass
    status = runs.read_status(run_dir)
    assert status["state"] == "failed"
    assert "gone.jsonl" in status["error"] and "file not found" in status["error"]
    assert status["hint"]


def test_answer_only_loss_equals_trl_loss(tiny_model_dir, tiny_classification):
    """The compact loss (answer positions only through the LM head) is TRL's loss, computed cheaper."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from core.models import load_tokenizer
    from core.train import _answer_only_trainer, build_examples

    tok = load_tokenizer(str(tiny_model_dir))
    cfg = TuneConfig.from_dict(tiny_config(tiny_model_dir, *tiny_classification))
    rows, _ = build_examples(cfg, tok)
    losses = {}
    for cls in (SFTTrainer, _answer_only_trainer()):
        torch.manual_seed(0)
        args = SFTConfig(output_dir="/tmp/unused", per_device_train_batch_size=4, report_to="none", use_cpu=True,
                         max_length=256, save_strategy="no")
        trainer = cls(model=AutoModelForCausalLM.from_pretrained(tiny_model_dir), args=args, processing_class=tok,
                      peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"),
                      train_dataset=Dataset.from_list(rows))
        batch = next(iter(trainer.get_train_dataloader()))
        trainer.model.train()
        losses[cls.__name__] = trainer.compute_loss(trainer.model, dict(batch)).item()
        assert trainer._metrics["train"]["mean_token_accuracy"]
    assert losses["AnswerOnlySFTTrainer"] == pytest.approx(losses["SFTTrainer"], rel=1e-4)


def test_fewer_than_ten_training_examples_fail_with_a_clear_cause(workspace, tiny_model_dir, tmp_path):
    import json

    path = tmp_path / "few.jsonl"
    path.write_text("".join(json.dumps({"input_text": f"t{i}", "output_text": "games"}) + "\n" for i in range(9)))
    cfg = tiny_config(tiny_model_dir, path, path)
    run_dir = runs.create_run(workspace, cfg)
    with pytest.raises(Exception):
        run_tuning(run_dir)
    status = runs.read_status(run_dir)
    assert status["state"] == "failed" and "only 9 training examples" in status["error"]
