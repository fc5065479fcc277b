"""Tuning throughput: `studio tune` against TRL's SFTTrainer used as its documentation shows, on the same
model, rows, template, LoRA settings, batch and steps, alternated A B A B in one script.

    .venv/bin/python benchmarks/tune_vs_trl.py                  # 519 shared rows, 15 steps, 2 rounds
    .venv/bin/python benchmarks/tune_vs_trl.py --steps 5 --rounds 1 --no-write

Each side runs in its own process (so peak RSS is its own, read from the OS when it exits) and is
timed by its trainer: tokens/s = non-padding tokens seen / train wall time (the training loop, not
model loading). The last losses of both are printed: the math is the same (the studio's step is
tested equal to TRL's on one batch), only the order of batches differs (the studio groups rows of
like length). Appends one JSON line to benchmarks/results.jsonl."""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "debian_classification_train.jsonl"
RANK, ALPHA, LR = 8, 16, 2e-4


def training_rows(path: Path, rows: int) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()][:rows]


def run_trl(rows: list[dict], steps: int, batch: int, out: Path) -> dict:
    """TRL's quick start with a LoRA config: SFTConfig defaults (bf16 autocast, gradient checkpointing)."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from core.config import BUNDLED_MODEL
    from core.models import load_tokenizer, resolve_model
    from core.templates import default_template, training_pairs

    location = resolve_model(BUNDLED_MODEL, ROOT / "workspace")
    tokenizer = load_tokenizer(location)
    template = default_template("classification", sorted({r["output_text"] for r in rows}))
    pairs = [p for r in rows for p in training_pairs(tokenizer, template, r)]
    args = SFTConfig(output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch, learning_rate=LR,
                     logging_steps=1, report_to="none", save_strategy="no", max_length=512,
                     include_num_input_tokens_seen="non_padding", use_cpu=not torch.cuda.is_available())
    trainer = SFTTrainer(model=location, args=args, train_dataset=Dataset.from_list(pairs), processing_class=tokenizer,
                         peft_config=LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0,
                                                target_modules="all-linear", task_type="CAUSAL_LM"))
    result = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"tokens": trainer.state.num_input_tokens_seen, "seconds": result.metrics["train_runtime"],
            "losses": losses, "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20)
            if torch.cuda.is_available() else None}


def run_studio(rows: list[dict], steps: int, batch: int, out: Path) -> dict:
    """The studio's own road: a tune job with its defaults for these settings, run by core.worker."""
    from core import jobs, runs
    from core.config import TuneConfig
    from core.names import METRICS_FILE
    from core.templates import default_template
    from core.worker import run_job

    train = out / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    held = out / "held.jsonl"  # an eval file, so all rows train; never evaluated within these steps
    held.write_text("".join(json.dumps(r) + "\n" for r in rows[:16]))
    labels = sorted({r["output_text"] for r in rows})
    from core.config import BUNDLED_MODEL
    from core.models import resolve_model

    location = resolve_model(BUNDLED_MODEL, ROOT / "workspace")  # converted once, as for TRL
    cfg = TuneConfig(task="classification", train_file=str(train), eval_file=str(held), model=location,
                     template=default_template("classification", labels), labels=labels, max_iterations=steps,
                     batch_size=batch, learning_rate=LR, eval_every=steps + 1, eval_samples=0)
    cfg.lora.rank, cfg.lora.alpha, cfg.lora.dropout = RANK, ALPHA, 0.0
    run_dir = jobs.create_tune(out / "ws", cfg)
    run_job(run_dir)
    status = runs.read_status(run_dir)
    assert status["state"] == "succeeded", status
    losses = [m["loss"] for m in runs.read_jsonl(run_dir / METRICS_FILE) if "loss" in m]
    return {"tokens": status["tokens_seen"], "seconds": status["train_seconds"], "losses": losses,
            "peak_gpu_mb": status.get("peak_memory_mb") if status.get("device", "").startswith("CUDA") else None}


def child(side: str, steps: int, rows: int, batch: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        fn = run_trl if side == "trl" else run_studio
        result = fn(training_rows(DATA, rows), steps, batch, Path(tmp))
    print("RESULT " + json.dumps(result), flush=True)


def measure(side: str, a) -> dict:
    """One side in its own process; its peak RSS from the OS when it exits."""
    cmd = [sys.executable, __file__, "--child", side, "--steps", str(a.steps), "--rows", str(a.rows),
           "--batch-size", str(a.batch_size)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
    if status != 0 or line is None:
        raise SystemExit(f"{side} failed (exit status {status}):\n{out[-3000:]}")
    r = json.loads(line[len("RESULT "):])
    r["peak_rss_mb"] = round(usage.ru_maxrss / 1024)  # Linux reports kilobytes
    r["tokens_per_s"] = round(r["tokens"] / r["seconds"], 1)
    r["last_losses_mean"] = round(statistics.mean(r["losses"][-5:]), 4)
    print(f"{side:6s} {r['tokens_per_s']:7.1f} tokens/s  {r['seconds']:6.1f} s  peak RSS {r['peak_rss_mb']} MB  "
          f"last 5 losses {r['last_losses_mean']}", file=sys.stderr, flush=True)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--rows", type=int, default=519)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-write", action="store_true", help="print only; do not append to results.jsonl")
    ap.add_argument("--child", choices=("trl", "studio"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a.child, a.steps, a.rows, a.batch_size)
    from core.models import describe_device, pick_device

    rounds = [{side: measure(side, a) for side in ("trl", "studio")} for _ in range(a.rounds)]  # A B A B
    trl = [r["trl"]["tokens_per_s"] for r in rounds]
    studio = [r["studio"]["tokens_per_s"] for r in rounds]
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), "benchmark": "tune_vs_trl",
        "machine": platform.machine(), "device": describe_device(pick_device("auto")),
        "rows": a.rows, "steps": a.steps, "batch_size": a.batch_size, "lora_rank": RANK, "learning_rate": LR,
        "trl_tokens_per_s": trl, "studio_tokens_per_s": studio,
        "ratio": round(statistics.mean(studio) / statistics.mean(trl), 2),
        "trl_peak_rss_mb": [r["trl"]["peak_rss_mb"] for r in rounds],
        "studio_peak_rss_mb": [r["studio"]["peak_rss_mb"] for r in rounds],
        "trl_last_losses_mean": [r["trl"]["last_losses_mean"] for r in rounds],
        "studio_last_losses_mean": [r["studio"]["last_losses_mean"] for r in rounds],
        "trl_peak_gpu_mb": [r["trl"].get("peak_gpu_mb") for r in rounds],
        "studio_peak_gpu_mb": [r["studio"].get("peak_gpu_mb") for r in rounds],
    }
    print(json.dumps(result, indent=1))
    if not a.no_write:
        with open(ROOT / "benchmarks" / "results.jsonl", "a") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
