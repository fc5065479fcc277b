"""Does token-level distillation help a classification student? Measured before it is offered.

On the same kept teacher answers of the distillation demo (benchmarks/distill_demo.py: the teacher run
labelled 4,000 Debian descriptions; the first ROWS kept ones are used here), two students of the bundled
model are tuned with the same steps, batch, learning rate, LoRA and seed:

  plain        the studio's student step: supervised tuning on the teacher's answers (cross-entropy on
               the answer tokens, core.train.run_tuning)
  token_level  TRL's GKDTrainer (trl.experimental.gkd) with lmbda=0 and beta=0, i.e. off-policy
               "supervised KD": on the teacher's answers the student matches the teacher's whole
               next-token distribution (forward KL) instead of its argmax token. The teacher is the
               teacher run's model with its adapter, on the same rendered rows (teacher and student
               share the bundled tokenizer).

Both are scored by the studio's evaluation (core.evaluate.run_evaluation, label scoring) on the first 300
rows of the shared eval file; one line goes to benchmarks/results.jsonl. Run it once, under the CPU lock:

    flock /tmp/cpu.lock .venv/bin/python benchmarks/distill_token_level.py [--steps 48]

The token-level loss is computed the way the studio's supervised step computes its own (core.sft_step):
only answer positions go through the LM head, the prompt start every row shares runs once, long batches
run in passes. The loss itself is GKDTrainer.generalized_jsd_loss, unchanged."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import jobs, runs
from core.config import EvalConfig, TuneConfig
from core.distill_student import student_config, student_rows
from core.evaluate import run_evaluation
from core.models import describe_device, load_model, load_tokenizer, pick_device, resolve_model, use_bf16
from core.monitor import Worker, make_callback
from core.names import ADAPTER_DIR, CHECKPOINTS_DIR, CONFIG_FILE
from core.sft_step import hidden_states, row_groups, rows_of, shared_prefix_length
from core.templates import render_answer, render_prompt
from core.train import run_tuning, split_train_eval

EVAL = ROOT.parent / "shared" / "data" / "debian_classification_eval.jsonl"
EVAL_ROWS = 300


def token_level_trainer():
    """GKDTrainer whose loss reads the answer positions only (see the module docstring)."""
    import torch
    from trl import SFTTrainer
    from trl.experimental.gkd import GKDTrainer

    class AnswerPositionsGKDTrainer(GKDTrainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            # lmbda=0 and seq_kd off: GKD's own step would only add a coin flip that never generates.
            if num_items_in_batch is None:
                num_items_in_batch = (inputs["labels"][:, 1:] != -100).sum()
            groups = row_groups(inputs["attention_mask"])
            return sum(SFTTrainer.training_step(self, model, rows_of(inputs, g), num_items_in_batch) for g in groups)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            ids, attention, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
            prefix = shared_prefix_length(ids, attention, labels)
            targets = labels[:, prefix + 1:]
            mask = targets != -100

            def answer_logits(lm):
                inner = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
                hidden = hidden_states(inner.base_model, ids, attention, prefix)[:, :-1]
                return inner.get_output_embeddings()(hidden[mask]).float()

            student = answer_logits(model)
            self.teacher_model.eval()
            with torch.no_grad():
                teacher = answer_logits(self.teacher_model)
            loss = self.generalized_jsd_loss(student, teacher, beta=self.beta, reduction="sum")
            tokens = num_items_in_batch if num_items_in_batch is not None else mask.sum()
            loss = loss / torch.as_tensor(tokens).clamp(min=1)
            return (loss, {"loss": loss}) if return_outputs else loss

    return AnswerPositionsGKDTrainer


def tokenized_rows(tokenizer, cfg: TuneConfig, examples: list[dict]) -> list[dict]:
    """Training rows as the studio renders them (core.templates), tokenized: the loss is on the answer."""
    out = []
    for e in examples:
        prompt = tokenizer(render_prompt(tokenizer, cfg.template, e["input_text"]),
                           add_special_tokens=False)["input_ids"]
        answer = tokenizer(render_answer(tokenizer, e["output_text"]), add_special_tokens=False)["input_ids"]
        ids = (prompt + answer)[:cfg.max_seq_length]
        out.append({"input_ids": ids, "labels": ([-100] * len(prompt) + answer)[:cfg.max_seq_length]})
    return out


def right_pad(pad_id: int):
    def collate(batch: list[dict]) -> dict:
        import torch

        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), pad_id)
        labels = torch.full((len(batch), width), -100)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[i, :n], labels[i, :n], attention[i, :n] = torch.tensor(b["input_ids"]), torch.tensor(b["labels"]), 1
        return {"input_ids": ids, "labels": labels, "attention_mask": attention}
    return collate


def train_token_level(ws: Path, run_dir: Path, teacher_run: str) -> dict:
    """Tune run_dir's config with the token-level loss; writes its adapter and status like a run."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, set_seed
    from trl.experimental.gkd import GKDConfig

    cfg = TuneConfig.from_dict(runs.read_json(run_dir / CONFIG_FILE))
    device = pick_device(cfg.device)
    bf16 = use_bf16(device)
    teacher_dir = runs.run_path(ws, teacher_run)
    teacher_cfg = runs.read_json(teacher_dir / CONFIG_FILE)
    teacher, teacher_tokenizer, _ = load_model(teacher_cfg["model"], ws, cfg.device, adapter=teacher_dir / ADAPTER_DIR)
    teacher = teacher.merge_and_unload()  # the teacher only answers: one weight per layer is faster
    location = resolve_model(cfg.model, ws)
    tokenizer = load_tokenizer(location)
    if teacher_tokenizer.get_vocab() != tokenizer.get_vocab():
        raise SystemExit("teacher and student tokenizers differ: token-level distillation needs a shared one")
    train_ex, _ = split_train_eval(cfg)  # the rows the plain student trains on (its held-out slice aside)
    rows = tokenized_rows(tokenizer, cfg, train_ex)
    set_seed(cfg.seed)
    model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.bfloat16 if bf16 else torch.float32,
                                                 use_safetensors=True)
    worker = Worker(run_dir)
    worker.status(state="running", device=describe_device(device), precision="bf16" if bf16 else "fp32",
                  phase="training", train_rows=len(rows), started=runs.now_iso())
    args = GKDConfig(output_dir=str(run_dir / CHECKPOINTS_DIR), max_steps=cfg.max_iterations,
                     learning_rate=cfg.learning_rate, per_device_train_batch_size=cfg.batch_size,
                     lr_scheduler_type="linear", warmup_steps=0.05, logging_steps=1, seed=cfg.seed,
                     eval_strategy="no", save_strategy="no", report_to="none", disable_tqdm=True, bf16=bf16,
                     use_cpu=device == "cpu", max_length=cfg.max_seq_length, dataloader_num_workers=0,
                     gradient_checkpointing=cfg.gradient_checkpointing,
                     train_sampling_strategy="group_by_length", include_num_input_tokens_seen="non_padding",
                     lmbda=0.0, beta=0.0, seq_kd=False)
    peft_config = LoraConfig(r=cfg.lora.rank, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                             target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
    trainer = token_level_trainer()(model=model, teacher_model=teacher, args=args, processing_class=tokenizer,
                                    train_dataset=Dataset.from_list(rows),
                                    data_collator=right_pad(tokenizer.pad_token_id),
                                    peft_config=peft_config, callbacks=[make_callback(worker, cfg.max_iterations)])
    output = trainer.train()
    trainer.model.save_pretrained(str(run_dir / ADAPTER_DIR))
    tokenizer.save_pretrained(str(run_dir / ADAPTER_DIR))
    seconds = round(output.metrics["train_runtime"], 2)
    worker.status(state="succeeded", phase="done", finished=runs.now_iso(), step=trainer.state.global_step,
                  train_seconds=seconds)
    return {"steps": trainer.state.global_step, "train_seconds": seconds, "rows": len(rows)}


def scored(ws: Path, run_id: str, role: str, eval_rows: int) -> dict:
    t0 = time.time()
    eval_file = ws / "data" / f"debian_eval_{eval_rows}.jsonl"
    eval_file.write_text("".join(EVAL.read_text().splitlines(keepends=True)[:eval_rows]))
    out = ws / "distill_token_level" / role
    result = run_evaluation(ws, EvalConfig(data=str(eval_file), task="classification", run_id=run_id,
                                           score_base=False, mode="score"), out)["tuned"]
    return {"macro_f1": round(result["macro_f1"], 4), "accuracy": round(result["accuracy"], 4),
            "macro_f1_95": result.get("confidence_95", {}).get("macro_f1"), "eval_seconds": round(time.time() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--workspace", default=str(ROOT / "workspace" / "sweep"))
    ap.add_argument("--smoke", action="store_true", help="2 steps, 16 eval rows, nothing recorded: does it run")
    a = ap.parse_args()
    eval_rows = 16 if a.smoke else EVAL_ROWS
    a.steps = 2 if a.smoke else a.steps
    ws = runs.workspace_dir(a.workspace)
    state = runs.read_json(ws / "distill_demo.json", {}) or {}
    pass_dir = ws / state["teacher_pass"]
    # Both students read the same rows: the first kept answers, enough for the steps plus the 32-row
    # held-out slice the plain student sets aside (core.train.split_train_eval; the token-level one skips them).
    cfg, _ = student_config(ws, pass_dir, steps=a.steps, name="plain student (token-level benchmark)",
                            eval_every=a.steps, best_checkpoint=False)
    rows = student_rows(pass_dir)[:a.steps * cfg.batch_size + 32]
    subset = Path(cfg.train_file).with_name(f"token_level_benchmark_{len(rows)}.jsonl")
    runs.write_jsonl(subset, rows)
    Path(cfg.train_file).unlink()
    cfg = dataclasses.replace(cfg, train_file=str(subset))
    results = {}
    for role in ("plain", "token_level"):
        run_dir = jobs.create_tune(ws, dataclasses.replace(cfg, name=f"{role} student (token-level benchmark)"))
        t0 = time.time()
        if role == "plain":
            run_tuning(run_dir)
            st = runs.read_status(run_dir)
            trained = {"steps": st.get("step"), "train_seconds": st.get("train_seconds")}
        else:
            trained = train_token_level(ws, run_dir, state["teacher_run"])
        results[role] = {"run_id": run_dir.name, **trained, "tune_wall_seconds": round(time.time() - t0, 1),
                         **scored(ws, run_dir.name, role, eval_rows)}
        print(role, json.dumps(results[role]), flush=True)
    out = {"date": runs.now_iso(), "benchmark": "distill_token_level", "device": "CPU (2 cores, bf16)",
           "teacher_run": state["teacher_run"], "teacher_pass": pass_dir.name, "train_rows_file": len(rows),
           "steps": a.steps, "batch_size": cfg.batch_size, "learning_rate": cfg.learning_rate, "seed": cfg.seed,
           "lora_rank": cfg.lora.rank, "eval_rows": eval_rows,
           "same_template_as_teacher": cfg.template == runs.read_json(pass_dir / "teacher.json", {}).get("template"),
           "token_level_loss": "GKD lmbda=0 beta=0 (forward KL)",
           **results, "delta_macro_f1": round(results["token_level"]["macro_f1"] - results["plain"]["macro_f1"], 4)}
    print(json.dumps(out, indent=1), flush=True)
    if a.smoke:
        return
    with open(ROOT / "benchmarks" / "results.jsonl", "a") as f:
        f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
