"""What a running worker tells the outside world: status.json (with a heartbeat), one metrics line per
logged step, a few eval answers at each eval point, and a checkpoint when asked to stop."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from core import runs
from core.config import GenerationConfig
from core.generate import generate_texts
from core.names import CANCEL_FILE, CHECKPOINT_COMPLETE, CHECKPOINT_PREFIX, SAMPLES_FILE


def is_main_process() -> bool:
    """Under `accelerate launch` / `torchrun` every rank trains; only rank 0 writes the run folder."""
    return int(os.environ.get("RANK", "0")) == 0


class Worker:
    """Status writes from the training loop and the heartbeat thread, serialised by one lock."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.main = is_main_process()

    def status(self, **fields):
        if not self.main:
            return {}
        with self.lock:
            return runs.update_status(self.run_dir, heartbeat_ts=time.time(), **fields)

    def beat(self):
        while not self.stop.wait(runs.HEARTBEAT_EVERY):
            self.status()


def make_callback(worker: Worker, max_steps: int, samples: list[dict] | None = None, tokenizer=None,
                  sample_tokens: int = 32):
    """A TrainerCallback writing the run folder. `samples`: eval rows ({prompt, reference, line}) answered
    at each eval point, so people see the answers change during tuning."""
    from transformers import TrainerCallback

    class StudioCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            done = runs.read_metrics(worker.run_dir)
            offset = max((m.get("time", 0) for m in done), default=0)  # a resumed run's clock goes on
            self.t0 = time.time() - offset
            self.begin, self.first_step = time.time(), state.global_step
            self.last = (time.time(), state.num_input_tokens_seen or 0)  # at the previous train log

        def on_step_end(self, args, state, control, **kw):
            elapsed = time.time() - self.t0
            done_here = state.global_step - self.first_step
            per_step = (time.time() - self.begin) / done_here if done_here else None
            eta = per_step * (max_steps - state.global_step) if per_step else None
            if (worker.run_dir / CANCEL_FILE).exists():
                control.should_training_stop = True
                control.should_save = True  # a checkpoint to resume from
            # The trainer's own flow callback ran first and decided what follows this step: say so, so a
            # page never shows "training" through an eval pass or a checkpoint write.
            phase = ("evaluating: eval loss and answers" if control.should_evaluate
                     else "saving a checkpoint" if control.should_save else "training")
            worker.status(step=state.global_step, elapsed_s=round(elapsed, 1), eta_s=eta and round(eta, 1),
                          phase=phase)

        def on_log(self, args, state, control, logs=None, **kw):
            logs = dict(logs or {})
            now = time.time()
            rec = {"step": state.global_step, "time": round(now - self.t0, 2), "epoch": logs.get("epoch")}
            if "loss" in logs:
                t_prev, tok_prev = self.last
                tokens = state.num_input_tokens_seen or 0
                rec.update(loss=logs["loss"], learning_rate=logs.get("learning_rate"),
                           grad_norm=logs.get("grad_norm"), mean_token_accuracy=logs.get("mean_token_accuracy"),
                           tokens_per_s=round((tokens - tok_prev) / max(1e-6, now - t_prev), 1))
                self.last = (now, tokens)
            for k, v in logs.items():  # eval loss/accuracy; DPO reward accuracy and margins
                if k in ("eval_loss", "eval_mean_token_accuracy") or "rewards/" in k:
                    rec[k.replace("/", "_")] = v
            if len(rec) > 3 and worker.main:
                runs.append_metrics(worker.run_dir, rec)

        def on_save(self, args, state, control, **kw):
            # Called after the trainer wrote the checkpoint's last file: mark it complete, so a resume
            # never picks a folder a killed worker left half written.
            folder = Path(args.output_dir) / f"{CHECKPOINT_PREFIX}{state.global_step}"
            if worker.main and folder.is_dir():
                runs.write_json(folder / CHECKPOINT_COMPLETE, {"step": state.global_step, "time": runs.now_iso()})
            worker.status(phase="training")

        def on_evaluate(self, args, state, control, model=None, **kw):
            if samples and model is not None and tokenizer is not None and worker.main:
                write_samples(worker.run_dir, state.global_step, model, tokenizer, samples, sample_tokens)
            worker.status(phase="saving a checkpoint" if control.should_save else "training")

    return StudioCallback()


def write_samples(run_dir: Path, step: int, model, tokenizer, samples: list[dict], max_tokens: int) -> None:
    """Answer the sample eval rows with the model as it is now (greedy) and append them."""
    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    try:
        answers = generate_texts(model, tokenizer, [s["prompt"] for s in samples],
                                 GenerationConfig(max_output_tokens=max_tokens, batch_size=len(samples)))
    finally:
        tokenizer.padding_side = side  # the training collator shares this tokenizer
        model.train(was_training)
    for s, a in zip(samples, answers):
        runs.append_jsonl(run_dir / SAMPLES_FILE, {"step": step, "line": s.get("line"),
                                                   "input_text": s.get("input_text", ""),
                                                   "reference": s["reference"], "answer": a})


def read_samples(run_dir: str | Path) -> list[dict]:
    return runs.read_jsonl(Path(run_dir) / SAMPLES_FILE)


def peak_memory_mb(device: str) -> float:
    """Peak memory of this process: GPU memory allocated on CUDA, else the resident set size."""
    import resource

    import torch  # only a worker asks, and it has torch loaded already

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
