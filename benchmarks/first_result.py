"""Time to a first result, as a newcomer gets it: pick the sample classification set, Start with the
defaults, then "Compare on eval set" — through the same core calls the Tune and Evaluate pages make, in
a fresh workspace (so the bundled model is converted again, as on a fresh clone).

    make install                                    # time it: `time make install` on a fresh clone
    .venv/bin/python benchmarks/first_result.py --install-seconds 95

Prints the breakdown (install, model conversion, tuning, evaluation) and appends it to
benchmarks/results.jsonl."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import jobs, runs  # noqa: E402
from core.config import BUNDLED_MODEL, EvalConfig  # noqa: E402
from core.models import resolve_model  # noqa: E402
from core.requests import tune_config  # noqa: E402

TRAIN, EVAL = ROOT / "assets" / "classification_train.jsonl", ROOT / "assets" / "classification_eval.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--install-seconds", type=float, default=None, help="measured `make install` on a fresh clone")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = runs.workspace_dir(tmp)
        t0 = time.time()
        resolve_model(BUNDLED_MODEL, ws)  # what the first run does before its first step
        convert_s = time.time() - t0
        cfg, why = tune_config(ws, task="classification", train_file=str(TRAIN), eval_file=str(EVAL))
        t1 = time.time()
        run_dir = jobs.create_tune(ws, cfg)
        jobs.submit(run_dir)
        status = jobs.wait(run_dir)
        tune_s = time.time() - t1
        t2 = time.time()
        eval_dir = jobs.create_evaluation(ws, EvalConfig(data=str(EVAL), task="classification", run_id=run_dir.name))
        jobs.submit(eval_dir)
        jobs.wait(eval_dir)
        eval_s = time.time() - t2
        m = runs.read_json(eval_dir / "metrics.json")
    total = (a.install_seconds or 0) + convert_s + tune_s + eval_s
    out = {"date": runs.now_iso(), "benchmark": "first_result", "device": status.get("device"),
           "state": status.get("state"), "steps": cfg.max_iterations, "learning_rate": cfg.learning_rate,
           "why_steps": why, "train_rows": status.get("train_rows"), "eval_mode": m.get("mode"),
           "install_s": a.install_seconds, "model_conversion_s": round(convert_s, 1), "tuning_s": round(tune_s, 1),
           "evaluation_s": round(eval_s, 1), "total_minutes": round(total / 60, 2),
           "base_macro_f1": m["base"]["macro_f1"], "tuned_macro_f1": m["tuned"]["macro_f1"],
           "base_accuracy": m["base"]["accuracy"], "tuned_accuracy": m["tuned"]["accuracy"]}
    print(json.dumps(out, indent=1))
    with open(ROOT / "benchmarks" / "results.jsonl", "a") as f:
        f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
