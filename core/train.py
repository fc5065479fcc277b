"""LoRA tuning on TRL (SFTTrainer, or DPOTrainer for preference pairs). run_tuning(run_dir) reads
config.json and writes status.json, metrics.jsonl, checkpoints/ and adapter/; core.worker runs it in its
own process (`python -m core.worker RUN_DIR`) and records how it ends.

A run may ask for several processes (TuneConfig.processes): the queue then starts it under torchrun
(core.launch) and the Trainer trains data parallel, each process taking its share of every batch, so the
run learns from the same batches as with one process; only rank 0 writes the run folder.

Loss is on the answer tokens only: each example is a (prompt, completion) pair whose prompt is
core.templates.render_prompt, the same string generation and evaluation use later."""
from __future__ import annotations

import os
from pathlib import Path

from core import preferences, runs
from core.config import TuneConfig
from core.data import MIN_EXAMPLES, DataError, load_dataset
from core.data_formats import labeled_pairs
from core.models import describe_device, load_tokenizer, pick_device, resolve_model, use_bf16
from core.monitor import Worker, make_callback, peak_memory_mb
from core.sft_step import fast_sft_trainer
from core.names import ADAPTER_DIR, CANCEL_FILE, CHECKPOINTS_DIR, CONFIG_FILE, METRICS_FILE, SAMPLES_FILE
from core.templates import render_answer, render_prompt, training_pairs

# Eval loss during training is computed on at most this many rows (pairs, for DPO's reward accuracy),
# to keep CPU runs moving: an eval pass of 32 rows costs about two training steps.
EVAL_LOSS_ROWS = 32
HELD_PAIRS = 64


def split_train_eval(cfg: TuneConfig) -> tuple[list[dict], list[dict]]:
    """Training examples and the eval-loss examples (the eval file, or a held-out slice of training)."""
    def examples(path):
        data = load_dataset(path, cfg.input_column, cfg.output_column)
        if data.format not in ("prompt_answer", "chat"):
            raise DataError(f"holds {data.format.replace('_', ' ')} data; supervised tuning needs prompt → answer "
                            "examples or chat conversations", file=path,
                            hint="Choose a prompt/answer or chat file for this run.")
        return data.examples

    train = examples(cfg.train_file)
    if cfg.eval_file:
        held = examples(cfg.eval_file)[:EVAL_LOSS_ROWS]
    elif len(train) >= 50:  # no eval file: hold out a slice so eval loss still means something
        n = min(EVAL_LOSS_ROWS, len(train) // 10)
        train, held = train[:-n], train[-n:]
    else:
        held = []
    if len(train) < MIN_EXAMPLES:
        raise DataError(f"only {len(train)} training examples (after setting aside eval rows); tuning needs at "
                        f"least {MIN_EXAMPLES}", file=cfg.train_file, hint="Add examples, or use a separate eval file.")
    return train, held


def build_examples(cfg: TuneConfig, tokenizer) -> tuple[list[dict], list[dict]]:
    """Training and eval-loss examples as TRL prompt/completion pairs."""
    train, held = split_train_eval(cfg)
    return ([p for e in train for p in training_pairs(tokenizer, cfg.template, e)],
            [p for e in held for p in training_pairs(tokenizer, cfg.template, e)])


def run_tuning(run_dir: str | Path, resume: bool = False, worker: Worker | None = None):
    """Tune as config.json says (or go on from the last checkpoint); returns the trained PeftModel
    (for in-process callers and tests). Failures propagate: core.worker.run_job records them."""
    run_dir = Path(run_dir)
    if resume:  # the cancel that stopped it last time; a cancel sent before a fresh start still counts
        (run_dir / CANCEL_FILE).unlink(missing_ok=True)
    return _train(run_dir, worker or Worker(run_dir), resume)


def preference_pairs(cfg: TuneConfig, workspace: Path) -> tuple[list[dict], list[dict]]:
    """DPO pairs ({prompt, chosen, rejected}) for training and held-out evaluation: a labeling queue's
    curated pairs or a preference file; without an eval file a tenth is held out (reward accuracy)."""
    def from_file(path):  # pairs still to be labeled have no chosen answer to learn from
        return labeled_pairs(load_dataset(path, format="preference").examples)

    pairs = preferences.export(workspace, cfg.preference_queue, "dpo") if cfg.preference_queue \
        else from_file(cfg.train_file)
    if cfg.eval_file:
        held = from_file(cfg.eval_file)[:HELD_PAIRS]
    elif len(pairs) >= 20:
        n = min(HELD_PAIRS, max(2, len(pairs) // 10))
        pairs, held = pairs[:-n], pairs[-n:]
    else:
        held = []
    if len(pairs) < MIN_EXAMPLES:
        raise DataError(f"only {len(pairs)} preference pairs to train on; DPO needs at least {MIN_EXAMPLES}",
                        file=cfg.train_file if not cfg.preference_queue else None,
                        hint="Label more pairs (ties and both-bad are left out) or import a pairs file.")
    return pairs, held


def per_process_batch(cfg: TuneConfig, world: int) -> int:
    """Each process's share of a step's batch: the run's batch is the same whatever the processes."""
    if cfg.batch_size % world:
        raise ValueError(f"batch size {cfg.batch_size} does not split evenly over {world} processes; "
                         f"choose a batch size that is a multiple of {world}")
    return cfg.batch_size // world


def agree_on_stop():
    """A TrainerCallback for several processes: each reads the cancel file on its own, and one that
    stopped alone would leave the others waiting for it forever, so all stop (and save) when any would."""
    import torch
    import torch.distributed as dist
    from transformers import TrainerCallback

    class AgreeOnStop(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            flags = torch.tensor([control.should_training_stop, control.should_save], dtype=torch.int32,
                                 device=args.device)
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
            control.should_training_stop, control.should_save = bool(flags[0]), bool(flags[1])

    return AgreeOnStop()


def _train(run_dir: Path, worker: Worker, resume: bool):
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, EarlyStoppingCallback
    from trl import DPOConfig, DPOTrainer, SFTConfig

    cfg = TuneConfig.from_dict(runs.read_json(run_dir / CONFIG_FILE))
    checkpoint = runs.last_checkpoint(run_dir) if resume else None
    if resume and checkpoint is None:
        raise RuntimeError("this run has no complete checkpoint to resume from; start it again instead")
    if checkpoint is not None:  # the steps after the checkpoint are trained (and logged) again
        runs.keep_steps_up_to(run_dir, runs.checkpoint_step(checkpoint), (METRICS_FILE, SAMPLES_FILE))
    workspace = run_dir.parent.parent  # runs/<id> or estimates/<id>
    device = pick_device(cfg.device)
    bf16 = use_bf16(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun: this run's processes
    batch = per_process_batch(cfg, world)
    if device == "cuda" and world > torch.cuda.device_count():
        raise RuntimeError(f"this run has {world} processes, one per GPU, and this machine has "
                           f"{torch.cuda.device_count()} GPU(s); lower its processes")
    location = resolve_model(cfg.model, workspace)
    tokenizer = load_tokenizer(location)
    if cfg.method == "dpo":
        train_ex, held_ex = preference_pairs(cfg, workspace)

        def rows(pairs):
            return [{"prompt": render_prompt(tokenizer, cfg.template, p["prompt"]),
                     "chosen": render_answer(tokenizer, p["chosen"]),
                     "rejected": render_answer(tokenizer, p["rejected"])} for p in pairs]
        train_rows, eval_rows = rows(train_ex), rows(held_ex)
        samples = [{"prompt": r["prompt"], "reference": p["chosen"], "input_text": p["prompt"], "line": p.get("line")}
                   for r, p in zip(eval_rows, held_ex)][:cfg.eval_samples]
    else:
        train_ex, held_ex = split_train_eval(cfg)
        train_rows = [p for e in train_ex for p in training_pairs(tokenizer, cfg.template, e)]
        eval_rows = [p for e in held_ex for p in training_pairs(tokenizer, cfg.template, e)]
        samples = [{"prompt": render_prompt(tokenizer, cfg.template, e["input_text"]), "reference": e["output_text"],
                    "input_text": e["input_text"], "line": e["line"]}
                   for e in held_ex if "input_text" in e][:cfg.eval_samples]
    # bf16 weights wherever bf16 runs, under autocast (the adapter itself stays fp32, peft's default): on
    # a CPU 1.6x faster a step than fp32 weights under autocast, which casts every weight at every use.
    model = AutoModelForCausalLM.from_pretrained(
        location, dtype=torch.bfloat16 if bf16 else torch.float32, use_safetensors=True, trust_remote_code=False)
    worker.status(device=describe_device(device), precision="bf16" if bf16 else "fp32", phase="training",
                  train_rows=len(train_rows), eval_rows=len(eval_rows),
                  resumed_from=runs.checkpoint_step(checkpoint) if checkpoint else None)

    # The best adapter is chosen by eval loss, so it needs eval; early stopping needs the best choice.
    pick_best = bool(eval_rows) and (cfg.best_checkpoint or cfg.early_stopping_patience > 0)
    common = dict(
        output_dir=str(run_dir / CHECKPOINTS_DIR), max_steps=cfg.max_iterations, learning_rate=cfg.learning_rate,
        per_device_train_batch_size=batch, per_device_eval_batch_size=batch,
        lr_scheduler_type="linear", warmup_steps=0.05, logging_steps=1, seed=cfg.seed,
        eval_strategy="steps" if eval_rows else "no", eval_steps=cfg.eval_every,
        save_strategy="steps", save_steps=cfg.eval_every, save_total_limit=2,  # the best and the last
        load_best_model_at_end=pick_best, metric_for_best_model="eval_loss" if pick_best else None,
        greater_is_better=False if pick_best else None,
        report_to="none", disable_tqdm=True, bf16=bf16, use_cpu=device == "cpu",
        max_length=cfg.max_seq_length, gradient_checkpointing=cfg.gradient_checkpointing,
        include_num_input_tokens_seen="non_padding", dataloader_num_workers=0,
        # Several processes: every LoRA weight takes part in every step, so DDP need not search for unused
        # ones (a full graph walk each step), and checkpointed layers must not re-enter autograd under DDP.
        **(dict(ddp_find_unused_parameters=False,
                gradient_checkpointing_kwargs={"use_reentrant": False}) if world > 1 else {}))
    peft_config = LoraConfig(r=cfg.lora.rank, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                             target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
    callbacks = [make_callback(worker, cfg.max_iterations, samples, tokenizer,
                               sample_tokens=16 if cfg.task == "classification" else 48)]
    if pick_best and cfg.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    if world > 1:
        callbacks.append(agree_on_stop())  # last: it sees what every other callback decided
    data = dict(train_dataset=Dataset.from_list(train_rows),
                eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None)
    if cfg.method == "dpo":  # the reference model is the same weights with the adapter switched off
        trainer = DPOTrainer(model=model, args=DPOConfig(**common, beta=cfg.beta), processing_class=tokenizer,
                             peft_config=peft_config, callbacks=callbacks, **data)
    else:
        # Rows of like length train together: padding is work on nothing (1.45x on the shared
        # classification rows, whose lengths run from 60 to 770 tokens).
        args = SFTConfig(**common, completion_only_loss=True, packing=False, train_sampling_strategy="group_by_length",
                         prediction_loss_only=True)  # eval needs the loss only; see core.sft_step
        trainer = fast_sft_trainer()(model=model, args=args, processing_class=tokenizer,
                                     peft_config=peft_config, callbacks=callbacks, **data)
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    worker.status(phase="saving the adapter")
    if worker.main:
        trainer.model.save_pretrained(str(run_dir / ADAPTER_DIR))  # the best one when pick_best (loaded at the end)
        tokenizer.save_pretrained(str(run_dir / ADAPTER_DIR))
    state = trainer.state
    best = state.best_model_checkpoint
    stopped_early = state.global_step < cfg.max_iterations and not (run_dir / CANCEL_FILE).exists()
    worker.status(state="cancelled" if (run_dir / CANCEL_FILE).exists() else "succeeded", finished=runs.now_iso(),
                  phase="done", step=state.global_step, peak_memory_mb=round(peak_memory_mb(device)),
                  best_step=runs.checkpoint_step(best) if (pick_best and best) else state.global_step,
                  best_eval_loss=state.best_metric if pick_best else None, stopped_early=stopped_early,
                  tokens_seen=state.num_input_tokens_seen, train_seconds=round(output.metrics["train_runtime"], 2))
    return trainer.model
