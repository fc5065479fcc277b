"""Evaluation throughput, side by side on the same rows. Classification: one row at a time greedy
generation, batched greedy generation, label scoring (log-likelihood of each label, core.label_scoring,
the default mode) and batched generation constrained to the labels; and how often label scoring picks
the same label as constrained greedy decoding. Summarization (--task summarization): one row at a time
against batched greedy generation (length-sorted batches, the evaluation's own path).

    .venv/bin/python benchmarks/eval_throughput.py [--rows 100] [--rounds 2] [--data PATH] [--run RUN_ID]
    .venv/bin/python benchmarks/eval_throughput.py --task summarization [--run RUN_ID]

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
from core.config import BUNDLED_MODEL, DEFAULT_CALIBRATION, TuneConfig  # noqa: E402
from core.data import load_dataset  # noqa: E402
from core.names import ADAPTER_DIR, CONFIG_FILE  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
DEFAULT_DATA = {"classification": SHARED / "debian_classification_eval.jsonl",
                "summarization": SHARED / "debian_summarization_eval.jsonl"}
METHODS = {"classification": ("one_row_generate", "batched_generate", "label_scoring", "constrained_generate"),
           "summarization": ("one_row_generate", "batched_generate")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100, help="the first N rows of the eval file")
    ap.add_argument("--rounds", type=int, default=2, help="times each method runs (alternated)")
    ap.add_argument("--task", choices=tuple(METHODS), default="classification")
    ap.add_argument("--data", help="eval file (input_text, output_text); default: the task's shared eval file")
    ap.add_argument("--model", default=BUNDLED_MODEL)
    ap.add_argument("--run", help="a tuned run: its adapter, labels and template")
    ap.add_argument("--batch-size", type=int, help="prompts per batch when generating (default: the evaluation's)")
    ap.add_argument("--score-batch-size", type=int, default=8, help="prompts per batch when scoring labels")
    ap.add_argument("--calibration", type=float, default=DEFAULT_CALIBRATION,
                    help="label scoring's calibration strength (0 = plain log-likelihood)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workspace", default=str(ROOT / "workspace"))
    ap.add_argument("--no-write", action="store_true", help="print only; do not append to results.jsonl")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    a.data = a.data or str(DEFAULT_DATA[a.task])
    methods = METHODS[a.task]
    import torch

    from core.evaluate import default_generation
    from core.generate import generate_texts, label_sequences
    from core.label_scoring import content_free_prompts, score_labels
    from core.metrics import parse_label
    from core.models import describe_device, load_model
    from core.templates import render_prompt, template_for

    ws = runs.workspace_dir(a.workspace)
    run_dir = runs.run_path(ws, a.run) if a.run else None
    run_cfg = TuneConfig.from_dict(runs.read_json(run_dir / CONFIG_FILE)) if run_dir else None
    dataset = load_dataset(a.data)
    rows = dataset.examples[:a.rows]
    labels = (run_cfg.labels if run_cfg and run_cfg.labels else dataset.labels) if a.task == "classification" else []
    template = template_for(run_cfg.to_dict() if run_cfg else None, a.task, labels)
    model, tok, device = load_model(run_cfg.model if run_cfg else a.model, ws, a.device,
                                    adapter=run_dir / ADAPTER_DIR if run_dir else None)
    prompts = [render_prompt(tok, template, r["input_text"]) for r in rows]
    refs = [r["output_text"] for r in rows]
    gen = default_generation(a.task, tok, labels)
    a.batch_size = a.batch_size or gen.batch_size
    only = label_sequences(tok, labels) if labels else None

    def one_row():
        gen.batch_size = 1
        return generate_texts(model, tok, prompts, gen)

    def batched():
        gen.batch_size = a.batch_size
        return generate_texts(model, tok, prompts, gen)

    free = content_free_prompts(lambda text: render_prompt(tok, template, text))

    def scoring():  # as evaluation scores: calibrated at the default strength unless --calibration says otherwise
        return [s["label"] for s in score_labels(model, tok, prompts, labels, batch_size=a.score_batch_size,
                                                 calibration=a.calibration, content_free=free)]

    def constrained():
        gen.batch_size = a.batch_size
        return generate_texts(model, tok, prompts, gen, only=only)

    run = dict(zip(METHODS["classification"], (one_row, batched, scoring, constrained)))
    seconds = {m: 0.0 for m in methods}
    answers: dict[str, list] = {}
    print(f"{len(rows)} rows, {len(labels)} labels, {a.rounds} rounds on {describe_device(device)}", file=sys.stderr)
    for r in range(a.rounds):
        for m in (methods if r % 2 == 0 else methods[::-1]):
            t0 = time.perf_counter()
            with torch.inference_mode():
                answers[m] = run[m]()
            seconds[m] += time.perf_counter() - t0
            print(f"round {r + 1} {m}: {len(rows) / (time.perf_counter() - t0):.2f} rows/s", file=sys.stderr)
    out = {"date": runs.now_iso(), "benchmark": "eval_throughput", "task": a.task, "machine": platform.machine(),
           "device": describe_device(device), "cpu_threads": torch.get_num_threads(), "cores": os.cpu_count(),
           "model": run_cfg.model if run_cfg else a.model, "run_id": a.run, "data": Path(a.data).name,
           "rows": len(rows), "labels": len(labels), "rounds": a.rounds, "batch_size": a.batch_size,
           "score_batch_size": a.score_batch_size, "calibration": a.calibration, "max_output_tokens": gen.max_output_tokens}
    for m in methods:
        out[m] = {"rows_per_second": round(a.rounds * len(rows) / max(seconds[m], 1e-9), 3)}
    base = out["one_row_generate"]["rows_per_second"]
    out["ratios_vs_one_row"] = {m: round(out[m]["rows_per_second"] / base, 2) for m in methods[1:]}
    if a.task == "classification":
        chosen = {m: [parse_label(x, labels) if x is not None else None for x in answers[m]] for m in methods}
        for m in methods:
            out[m].update(accuracy=round(sum(c == ref for c, ref in zip(chosen[m], refs)) / max(1, len(rows)), 4),
                          off_label=sum(c is None for c in chosen[m]))
        agree = lambda x, y: round(sum(p == q for p, q in zip(chosen[x], chosen[y])) / max(1, len(rows)), 4)  # noqa: E731
        out["agreement_scoring_vs_constrained"] = agree("label_scoring", "constrained_generate")
        out["agreement_scoring_vs_free"] = agree("label_scoring", "batched_generate")
    else:
        from core.metrics import summarization_metrics
        out.update({f"{m}_rougeL_f1": round(summarization_metrics(refs, [x or "" for x in answers[m]])["rougeL_f1"], 4)
                    for m in methods})
        out["mean_answer_tokens"] = round(sum(len(tok(x or "").input_ids) for x in answers["batched_generate"])
                                          / max(1, len(rows)), 1)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(out, indent=2))
    if not a.no_write:
        with open(ROOT / "benchmarks" / "results.jsonl", "a") as f:
            f.write(json.dumps(out) + "\n")
    return out


if __name__ == "__main__":
    main()
