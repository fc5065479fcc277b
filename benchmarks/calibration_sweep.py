"""How strongly label scoring should be calibrated (core.label_scoring), chosen on rows the reported
figures never use: validation rows 2000-2199 of the shared classification training file, scored by tuned
runs of the learning-rate sweep (benchmarks/default_sweep.py, which trains on rows 0-518).

    .venv/bin/python benchmarks/calibration_sweep.py RUN_ID [RUN_ID …] [--workspace workspace/sweep]

Each run scores the rows once; the scores at every strength come from the same numbers (score − strength ×
the label's lean, the lean = its mean log-likelihood for the content-free inputs). Prints accuracy and
macro-F1 per strength and appends one JSON line per run to benchmarks/results.jsonl."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import runs  # noqa: E402
from core.config import TuneConfig  # noqa: E402
from core.label_scoring import content_free_prompts, score_labels  # noqa: E402
from core.metrics import task_metrics  # noqa: E402
from core.models import load_model  # noqa: E402
from core.templates import render_prompt, template_for  # noqa: E402

TRAIN = ROOT.parent / "shared" / "data" / "debian_classification_train.jsonl"
VALIDATION = (2000, 2200)
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_ids", nargs="+")
    ap.add_argument("--workspace", default=str(ROOT / "workspace" / "sweep"))
    a = ap.parse_args()
    rows = [json.loads(x) for x in TRAIN.read_text().splitlines()[slice(*VALIDATION)]]
    refs = [r["output_text"] for r in rows]
    for run_id in a.run_ids:
        run_dir = runs.run_path(a.workspace, run_id)
        cfg = TuneConfig.from_dict(runs.read_json(run_dir / "config.json"))
        lm, tok, _ = load_model(cfg.model, a.workspace, "auto", adapter=run_dir / "adapter")
        template = template_for(cfg.to_dict(), "classification", cfg.labels)
        prompts = [render_prompt(tok, template, r["input_text"]) for r in rows]
        free = content_free_prompts(lambda text, tok=tok, template=template: render_prompt(tok, template, text))
        scored = score_labels(lm, tok, prompts, cfg.labels, calibration=1.0, content_free=free)
        out = {"date": runs.now_iso(), "benchmark": "calibration_sweep", "run_id": run_id, "name": cfg.name,
               "learning_rate": cfg.learning_rate, "lora_rank": cfg.lora.rank, "rows": len(rows),
               "data": f"{TRAIN.name} lines {VALIDATION[0] + 1}-{VALIDATION[1]}", "by_strength": {}}
        for strength in STRENGTHS:
            answers = []
            for s in scored:  # raw − strength × lean, with lean = raw − fully calibrated
                score = {k: raw - strength * (raw - s["loglik"][k]) for k, raw in s["raw_loglik"].items()}
                answers.append(max(score, key=score.get))
            m = task_metrics("classification", refs, answers, cfg.labels)
            out["by_strength"][str(strength)] = {"accuracy": round(m["accuracy"], 4),
                                                 "macro_f1": round(m["macro_f1"], 4)}
            print(f"{run_id} lr {cfg.learning_rate:g} rank {cfg.lora.rank} strength {strength:<4} "
                  f"accuracy {m['accuracy']:.3f} macro-F1 {m['macro_f1']:.3f}", flush=True)
        with open(ROOT / "benchmarks" / "results.jsonl", "a") as f:
            f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
