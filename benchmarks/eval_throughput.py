"""Classification evaluation throughput, side by side on the same rows: one row at a time greedy
generation, batched greedy generation, label scoring (log-likelihood of each label, core.label_scoring,
the default mode) and batched generation constrained to the labels; and how often label scoring picks
the same label as constrained greedy decoding.

    .venv/bin/python benchmarks/eval_throughput.py [--rows 100] [--rounds 2] [--data PATH] [--run RUN_ID]

The methods alternate (A B C D, then D C B A, …) so that a machine getting slower or faster over the run
does not favour one. rows/s per method = rows answered / seconds spent, over all rounds. Default data: the
shared classification eval file (../shared/data/debian_classification_eval.jsonl, 17 classes). Appends
one JSON line to benchmarks/results.jsonl."""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import runs  # noqa: E402
from core.config import BUNDLED_MODEL, TuneConfig  # noqa: E402
from core.data import load_dataset  # noqa: E402
from core.names import ADAPTER_DIR, CONFIG_FILE  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "debian_classification_eval.jsonl"
METHODS = ("one_row_generate", "batched_generate", "label_scoring", "constrained_generate")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100, help="the first N rows of the eval file")
    ap.add_argument("--rounds", type=int, default=2, help="times each method runs (alternated)")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="classification eval file (input_text, output_text)")
    ap.add_argument("--model", default=BUNDLED_MODEL)
    ap.add_argument("--run", help="a tuned run: its adapter, labels and template")
    ap.add_argument("--batch-size", type=int, default=16, help="prompts per batch when generating")
    ap.add_argument("--score-batch-size", type=int, default=8, help="prompts per batch when scoring labels")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workspace", default=str(ROOT / "workspace"))
    ap.add_argument("--no-write", action="store_true", help="print only; do not append to results.jsonl")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    import torch

    from core.evaluate import default_generation
    from core.generate import generate_texts, label_sequences
    from core.label_scoring import score_labels
    from core.metrics import parse_label
    from core.models import describe_device, load_model
    from core.templates import render_prompt, template_for

    ws = runs.workspace_dir(a.workspace)
    run_dir = runs.run_path(ws, a.run) if a.run else None
    run_cfg = TuneConfig.from_dict(runs.read_json(run_dir / CONFIG_FILE)) if run_dir else None
    dataset = load_dataset(a.data)
    rows = dataset.examples[:a.rows]
    labels = run_cfg.labels if run_cfg and run_cfg.labels else dataset.labels
    template = template_for(run_cfg.to_dict() if run_cfg else None, "classification", labels)
    model, tok, device = load_model(run_cfg.model if run_cfg else a.model, ws, a.device,
                                    adapter=run_dir / ADAPTER_DIR if run_dir else None)
    prompts = [render_prompt(tok, template, r["input_text"]) for r in rows]
    refs = [r["output_text"] for r in rows]
    gen = default_generation("classification", tok, labels)
    only = label_sequences(tok, labels)

    def one_row():
        gen.batch_size = 1
        return generate_texts(model, tok, prompts, gen)

    def batched():
        gen.batch_size = a.batch_size
        return generate_texts(model, tok, prompts, gen)

    def scoring():
        return [s["label"] for s in score_labels(model, tok, prompts, labels, batch_size=a.score_batch_size)]

    def constrained():
        gen.batch_size = a.batch_size
        return generate_texts(model, tok, prompts, gen, only=only)

    run = dict(zip(METHODS, (one_row, batched, scoring, constrained)))
    seconds = {m: 0.0 for m in METHODS}
    answers: dict[str, list] = {}
    print(f"{len(rows)} rows, {len(labels)} labels, {a.rounds} rounds on {describe_device(device)}", file=sys.stderr)
    for r in range(a.rounds):
        for m in (METHODS if r % 2 == 0 else METHODS[::-1]):
            t0 = time.perf_counter()
            with torch.inference_mode():
                answers[m] = run[m]()
            seconds[m] += time.perf_counter() - t0
            print(f"round {r + 1} {m}: {len(rows) / (time.perf_counter() - t0):.2f} rows/s", file=sys.stderr)
    chosen = {m: [parse_label(x, labels) if x is not None else None for x in answers[m]] for m in METHODS}
    out = {"date": runs.now_iso(), "benchmark": "eval_throughput", "machine": platform.machine(),
           "device": describe_device(device), "cpu_threads": torch.get_num_threads(), "cores": os.cpu_count(),
           "model": run_cfg.model if run_cfg else a.model, "run_id": a.run, "data": Path(a.data).name,
           "rows": len(rows), "labels": len(labels), "rounds": a.rounds, "batch_size": a.batch_size,
           "score_batch_size": a.score_batch_size, "max_output_tokens": gen.max_output_tokens}
    for m in METHODS:
        right = sum(c == ref for c, ref in zip(chosen[m], refs))
        out[m] = {"rows_per_second": round(a.rounds * len(rows) / max(seconds[m], 1e-9), 3),
                  "accuracy": round(right / max(1, len(rows)), 4), "off_label": sum(c is None for c in chosen[m])}
    base = out["one_row_generate"]["rows_per_second"]
    out["ratios_vs_one_row"] = {m: round(out[m]["rows_per_second"] / base, 2) for m in METHODS[1:]}
    agree = lambda x, y: round(sum(p == q for p, q in zip(chosen[x], chosen[y])) / max(1, len(rows)), 4)  # noqa: E731
    out["agreement_scoring_vs_constrained"] = agree("label_scoring", "constrained_generate")
    out["agreement_scoring_vs_free"] = agree("label_scoring", "batched_generate")
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(out, indent=2))
    if not a.no_write:
        with open(ROOT / "benchmarks" / "results.jsonl", "a") as f:
            f.write(json.dumps(out) + "\n")
    return out


if __name__ == "__main__":
    main()
