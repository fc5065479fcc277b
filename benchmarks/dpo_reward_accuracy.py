"""DPO on pairs built from the sample classification data: does reward accuracy on held-out pairs
rise above 0.5 (chance)?

    .venv/bin/python benchmarks/dpo_reward_accuracy.py [--pairs 240] [--steps 30]

Each pair: the description as prompt (classification template), the true section as the chosen
answer and another section as the rejected one. Appends the figures to benchmarks/results.jsonl."""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import jobs, runs  # noqa: E402
from core.requests import tune_config  # noqa: E402
from core.templates import default_template  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=240)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--learning-rate", type=float, default=2e-4)
    ap.add_argument("--workspace", default=str(ROOT / "workspace"))
    a = ap.parse_args()
    ws = runs.workspace_dir(a.workspace)
    rng = random.Random(0)
    rows = [json.loads(x) for x in (ROOT / "assets" / "classification_train.jsonl").read_text().splitlines()]
    labels = sorted({r["output_text"] for r in rows})
    path = ws / "dpo_pairs.jsonl"
    with open(path, "w") as f:
        for r in rows[:a.pairs]:
            wrong = rng.choice([x for x in labels if x != r["output_text"]])
            first_is_right = rng.random() < 0.5
            cands = [r["output_text"], wrong] if first_is_right else [wrong, r["output_text"]]
            f.write(json.dumps({"input_text": r["input_text"], "candidate_0": cands[0], "candidate_1": cands[1],
                                "choice": 0 if first_is_right else 1}) + "\n")
    cfg, why = tune_config(ws, method="dpo", task="classification", train_file=str(path), steps=a.steps,
                           batch_size=a.batch_size, learning_rate=a.learning_rate, eval_every=10,
                           template=default_template("classification", labels), name="bench-dpo")
    run_dir = jobs.create_tune(ws, cfg)
    jobs.submit(run_dir)
    status = jobs.wait(run_dir, lambda st, new: print(f"step {st.get('step')}", file=sys.stderr))
    metrics = runs.read_metrics(run_dir)
    evals = [(m["step"], m["eval_rewards_accuracies"]) for m in metrics if "eval_rewards_accuracies" in m]
    times = [m["time"] for m in metrics if "loss" in m]
    out = {"date": runs.now_iso(), "benchmark": "dpo_reward_accuracy", "run_id": run_dir.name,
           "state": status.get("state"), "device": status.get("device"), "pairs_train": status.get("train_rows"),
           "pairs_heldout": status.get("eval_rows"), "steps": status.get("step"), "beta": cfg.beta,
           "learning_rate": cfg.learning_rate, "heldout_reward_accuracy_by_step": evals,
           "seconds_per_step": round((times[-1] - times[0]) / max(1, len(times) - 1), 2) if times else None}
    print(json.dumps(out, indent=2))
    with open(ROOT / "benchmarks" / "results.jsonl", "a") as f:
        f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
