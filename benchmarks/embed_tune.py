"""Embedding tuning on the sample set, as `studio embed tune --sample` runs it: the bundled all-MiniLM-L6-v2,
the defaults (one pass over the 3,000 training pairs, batch 32, in-batch negatives), as a job through the
queue in a fresh workspace; then base and tuned rank the 500 test queries against all 4,500 documents.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/embed_tune.py [--steps N] [--learning-rate R]

Prints base vs tuned NDCG@10, MRR@10, Recall@1/10 and MAP@100 with bootstrap intervals, the tuning wall
time (reading the data, loading the model, training with the live metric, saving) and the evaluation
time, and appends them to benchmarks/results.jsonl."""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import jobs, runs  # noqa: E402
from core.config import BUNDLED_EMBED_MODEL, EmbedTuneConfig  # noqa: E402
from core.embed.data import check_report, load_embed_set, recommend_steps, sample_files  # noqa: E402
from core.embed.evaluate import METRIC_NAMES, read_results  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, help="default: one pass over the training pairs")
    ap.add_argument("--batch-size", type=int, default=EmbedTuneConfig.batch_size)
    ap.add_argument("--learning-rate", type=float, default=EmbedTuneConfig.learning_rate)
    ap.add_argument("--model", default=BUNDLED_EMBED_MODEL)
    ap.add_argument("--keep", help="a workspace folder to keep the job in (for the page); default: a temporary one")
    a = ap.parse_args()
    files = sample_files()
    counts = check_report(load_embed_set(**files))["counts"]
    steps = a.steps or recommend_steps(counts["train_pairs"], a.batch_size)[0]
    cfg = EmbedTuneConfig(corpus=files["corpus"], queries=files["queries"], train_labels=files["train"],
                          test_labels=files["test"], model=a.model, max_iterations=steps, batch_size=a.batch_size,
                          learning_rate=a.learning_rate, eval_every=max(1, steps // 4), device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        ws = runs.workspace_dir(a.keep or tmp)
        t0 = time.time()
        job_dir = jobs.create_embed_tune(ws, cfg)
        jobs.submit(job_dir)  # its own worker process, with the queue's CPU threads
        status = jobs.wait(job_dir, lambda st, new: print(f"step {st.get('step')}/{st.get('max_steps')} "
                                                          f"{st.get('phase') or ''}", flush=True), poll=5)
        total_s = time.time() - t0
        results, _ = read_results(job_dir)
        live = [m for m in runs.read_metrics(job_dir) if "eval_ndcg_at_10" in m]
        if status.get("state") != "succeeded" or results is None:
            sys.exit(f"the job {status.get('state')}: {status.get('error')}\n{runs.log_tail(job_dir, 30)}")
    out = {"date": runs.now_iso(), "benchmark": "embed_tune", "machine": platform.machine(),
           "device": status.get("device"), "cores": len(os.sched_getaffinity(0)), "model": a.model,
           "data": "assets/embeddings (Debian synopsis → description)", "train_pairs": counts["train_pairs"],
           "test_queries": results["queries"], "documents": results["documents"], "steps": steps,
           "batch_size": a.batch_size, "learning_rate": a.learning_rate, "max_seq_length": cfg.max_seq_length,
           "tuning_s": status.get("tuning_s"), "train_seconds": status.get("train_seconds"),
           "evaluation_s": results.get("seconds"), "job_wall_s": round(total_s, 1),
           "peak_memory_mb": status.get("peak_memory_mb"),
           "base": {m: round(v, 4) for m, v in results["base"].items()},
           "tuned": {m: round(v, 4) for m, v in results["tuned"].items()}, "delta": results["delta"],
           "intervals": results["intervals"], "changes": results["changes"],
           "live_ndcg_at_10": [(m["step"], m["eval_ndcg_at_10"]) for m in live]}
    for m, name in METRIC_NAMES.items():
        lo, hi = results["intervals"]["delta"][m]
        print(f"{name:<10} base {results['base'][m]:.4f}  tuned {results['tuned'][m]:.4f}  "
              f"change {results['delta'][m]:+.4f} [{lo:+.4f}, {hi:+.4f}]")
    print(f"tuning {out['tuning_s']} s (trainer {out['train_seconds']} s), evaluation {out['evaluation_s']} s, "
          f"job {out['job_wall_s']} s; per query: {results['changes']}")
    with open(ROOT / "benchmarks" / "results.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
