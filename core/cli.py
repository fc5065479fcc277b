"""`studio` command line: serve | tune | evaluate | generate | runs | status | cancel.
Everything the browser does, this does too; `--json` gives machine-readable output."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from core import jobs, runs
from core.config import BASE_LEARNING_RATE, BUNDLED_MODEL, DPO_LEARNING_RATE, TASKS, ConfigError, GenerationConfig, LoraSettings, \
    TuneConfig, recommend_dpo_steps, recommend_steps
from core.data import MIN_EXAMPLES, DataError, load_dataset
from core.templates import default_template


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _with_run(action):
    """A subcommand on one run id, with the unknown or unsafe id reported instead of raised."""
    def cmd(a) -> int:
        try:
            run_dir = runs.run_path(runs.workspace_dir(a.workspace), a.run_id)
        except (ValueError, FileNotFoundError) as e:
            return _fail(str(e))
        action(a, run_dir)
        return 0
    return cmd


def cmd_serve(a) -> int:
    app = Path(__file__).resolve().parent.parent / "studio" / "app.py"
    os.environ["STUDIO_WORKSPACE"] = str(runs.workspace_dir(a.workspace))
    argv = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", a.host,
            "--server.port", str(a.port), "--browser.gatherUsageStats", "false"]
    print(f"Tuning Studio on http://{a.host}:{a.port}  (workspace: {os.environ['STUDIO_WORKSPACE']})", flush=True)
    os.chdir(app.parent.parent)  # so .streamlit/config.toml (theme, upload size) applies
    os.execv(sys.executable, argv)
    return 0


def build_dpo_config(a) -> tuple[TuneConfig, str]:
    """DPO from a labeling queue (--queue) or a preference file (--train)."""
    from core import preferences

    ws = runs.workspace_dir(a.workspace)
    if a.queue:
        n = len(preferences.export(ws, a.queue, "dpo"))
        source = f"queue {a.queue}"
    elif a.train:
        n = len(load_dataset(a.train, format="preference"))
        source = Path(a.train).name
    else:
        raise DataError("DPO needs --queue NAME (curated pairs) or --train FILE (preference pairs)")
    if n < MIN_EXAMPLES:
        raise DataError(f"{source} has {n} usable pairs; DPO needs at least {MIN_EXAMPLES}",
                        hint="Label more pairs (ties and both-bad are left out).")
    steps = a.steps or recommend_dpo_steps(n, a.batch_size)
    cfg = TuneConfig(task=a.task, train_file=str(Path(a.train).resolve()) if a.train else f"queue:{a.queue}",
                     eval_file=str(Path(a.eval).resolve()) if a.eval else None, model=a.model,
                     template=a.template or "{input_text}", max_iterations=steps,
                     learning_rate=a.learning_rate or DPO_LEARNING_RATE * (a.learning_rate_multiplier or 1.0),
                     batch_size=a.batch_size, max_seq_length=a.max_seq_length, eval_every=a.eval_every,
                     lora=LoraSettings(rank=a.lora_rank, alpha=a.lora_alpha or 2 * a.lora_rank),
                     device=a.device, seed=a.seed, name=a.name or "", method="dpo", beta=a.beta,
                     preference_queue=a.queue)
    return cfg, f"{n} preference pairs from {source}; {steps} steps."


def build_config(a) -> tuple[TuneConfig, str]:
    """A TuneConfig from `studio tune` flags, with defaults that follow the data; and why those steps."""
    if a.method == "dpo":
        return build_dpo_config(a)
    if not a.train:
        raise DataError("--train FILE is required for supervised tuning")
    train = load_dataset(a.train, a.input_column, a.output_column)
    if len(train) < MIN_EXAMPLES:
        raise DataError(f"only {len(train)} examples; tuning needs at least {MIN_EXAMPLES}", file=a.train,
                        hint="Add examples (100+ are recommended).")
    if a.eval:
        load_dataset(a.eval, a.input_column, a.output_column)  # fail now, not in the worker
    labels = train.labels if a.task == "classification" else []
    steps, why = recommend_steps(a.task, len(train), a.batch_size)
    if a.steps:
        steps, why = a.steps, f"{a.steps} steps as asked."
    lr = a.learning_rate or BASE_LEARNING_RATE * (a.learning_rate_multiplier or 1.0)
    cfg = TuneConfig(task=a.task, train_file=str(Path(a.train).resolve()),
                     eval_file=str(Path(a.eval).resolve()) if a.eval else None, model=a.model,
                     template=a.template or default_template(a.task, labels), max_iterations=steps,
                     learning_rate=lr, batch_size=a.batch_size, max_seq_length=a.max_seq_length,
                     eval_every=a.eval_every, lora=LoraSettings(rank=a.lora_rank, alpha=a.lora_alpha or 2 * a.lora_rank),
                     labels=labels, input_column=train.input_column, output_column=train.output_column,
                     device=a.device, seed=a.seed, name=a.name or "")
    return cfg, why


def _progress_line(status: dict, metrics: list[dict]) -> str:
    last = next((m for m in reversed(metrics) if "loss" in m), {})
    ev = next((m for m in reversed(metrics) if "eval_loss" in m), {})
    parts = [f"step {status.get('step', 0)}/{status.get('max_steps', '?')}"]
    if "loss" in last:
        parts.append(f"loss {last['loss']:.4f}")
    if "eval_loss" in ev:
        parts.append(f"eval_loss {ev['eval_loss']:.4f}")
    if last.get("tokens_per_s"):
        parts.append(f"{last['tokens_per_s']:.0f} tok/s")
    if status.get("eta_s"):
        parts.append(f"ETA {status['eta_s']:.0f}s")
    return "  ".join(parts)


def cmd_tune(a) -> int:
    ws = runs.workspace_dir(a.workspace)
    try:
        cfg, why = build_config(a)
    except (DataError, ConfigError) as e:
        return _fail(str(e))
    if a.estimate:
        return _estimate(ws, cfg.to_dict(), a.json)
    run_dir = runs.create_run(ws, cfg.to_dict(), name=cfg.name)
    how = jobs.submit(run_dir)
    if not a.json:
        waiting = f" (position {jobs.queue(ws).index(run_dir.name) + 1} in the queue)" if how == "queued" else ""
        print(f"run {run_dir.name} {how}{waiting}: {run_dir}\n  {why}", flush=True)
    status = runs.read_status(run_dir)
    if a.wait:
        def show(st, new):
            if not a.json and (new or st.get("state") in runs.FINAL_STATES):
                print(_progress_line(st, runs.read_metrics(run_dir)), flush=True)
        status = jobs.wait(run_dir, show)
        if not a.json:
            print(f"run {run_dir.name}: {status['state']}")
            if status.get("error"):
                print(f"  {status['error']}\n  {status.get('hint', '')}")
    if a.json:
        print(json.dumps({"run_id": run_dir.name, "run_dir": str(run_dir), "status": status.get("state")}))
    return 0 if status.get("state") in ("succeeded", "queued", "running") else 1


def _estimate(ws: Path, config: dict, as_json: bool) -> int:
    if not as_json:
        print(f"timing {jobs.ESTIMATE_STEPS} real steps to estimate the run…", flush=True)
    folder = jobs.start_estimate(ws, config)
    jobs.wait(folder)
    est = jobs.estimate_from(folder, config)
    if as_json:
        print(json.dumps(est))
    elif "error" in est:
        print(f"the speed trial failed: {est['error']}\n  {est.get('hint', '')}")
    else:
        print(f"{est['steps']} steps at {est['seconds_per_step']} s/step ≈ {est['total_seconds'] / 60:.1f} min "
              f"on {est['device']}; peak memory {est['peak_memory_mb']:,} MB")
    return 1 if "error" in est else 0


def _print_metrics(name: str, m: dict, task: str) -> None:
    st = m["evaluation_status"]
    print(f"\n== {name}  ({st['num_successful_rows']}/{st['num_total_rows']} rows)")
    if task == "classification":
        print(f"accuracy {m['accuracy']:.4f}   macro_f1 {m['macro_f1']:.4f}   micro_f1 {m['micro_f1']:.4f}   "
              f"off-label answers {m['off_label_count']}")
        print(f"{'label':<14}{'precision':>10}{'recall':>10}{'f1_score':>10}{'support':>9}")
        for r in m["per_label"]:
            print(f"{r['label']:<14}{r['precision']:>10.3f}{r['recall']:>10.3f}{r['f1_score']:>10.3f}{r['support']:>9}")
    elif task == "question_answering":
        print(f"exact_match {m['exact_match']:.4f}   token F1 {m['f1']:.4f}")
    elif task == "text_generation":
        print(f"BLEU-4 {m['bleu4']:.4f}   ROUGE-L F1 {m['rougeL_f1']:.4f}")
    else:
        for t in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
            print(f"{t:<10} P {m[t + '_precision']:.4f}  R {m[t + '_recall']:.4f}  F1 {m[t + '_f1']:.4f}")
    for k, (lo, hi) in m.get("confidence_95", {}).items():
        print(f"95% interval of {k}: {lo:.4f} – {hi:.4f} (bootstrap)")


def cmd_evaluate(a) -> int:
    from core.evaluate import run_evaluation
    from core.models import ModelError

    ws = runs.workspace_dir(a.workspace)
    try:
        run_dir = runs.run_path(ws, a.run) if a.run else None
        if run_dir and not (run_dir / "adapter").exists():
            return _fail(f"run {a.run} has no adapter yet (state: {runs.read_status(run_dir).get('state')})")

        def progress(done, total):
            if not a.json:
                print(f"\r{done}/{total} answers", end="", file=sys.stderr, flush=True)

        result = run_evaluation(ws, a.data, a.task, run_dir=run_dir, model=a.model, limit=a.limit,
                                template=a.template, out_dir=a.out_dir, device=a.device, progress=progress,
                                input_column=a.input_column, output_column=a.output_column,
                                constrained=a.constrained, batch_size=a.batch_size)
    except (DataError, ModelError, ValueError, FileNotFoundError) as e:
        if a.out_dir:  # a background job: the page reads the cause from its status.json
            runs.update_status(a.out_dir, state="failed", error=str(e), finished=runs.now_iso())
        return _fail(str(e))
    if a.json:
        print(json.dumps(result))
    else:
        print(file=sys.stderr)
        for name, m in result.items():
            _print_metrics(name, m, a.task)
    return 0


def cmd_generate(a) -> int:
    from core.generate import generate_texts
    from core.models import ModelError, load_model
    from core.templates import render_prompt

    ws = runs.workspace_dir(a.workspace)
    try:
        gen = GenerationConfig(max_output_tokens=a.max_output_tokens, temperature=a.temperature, top_k=a.top_k,
                               top_p=a.top_p, stop_sequences=a.stop or [], seed=a.seed)
        if a.run:
            run_dir = runs.run_path(ws, a.run)
            cfg = TuneConfig.from_dict(runs.read_json(run_dir / "config.json"))
            model, tok, _ = load_model(cfg.model, ws, a.device, adapter=run_dir / "adapter")
            template = cfg.template
        else:
            model, tok, _ = load_model(a.model, ws, a.device)
            template = "{input_text}"
        prompts = [a.prompt if a.raw else render_prompt(tok, template, a.prompt)]
        if a.run and a.base:
            with model.disable_adapter():
                texts = generate_texts(model, tok, prompts, gen)
        else:
            texts = generate_texts(model, tok, prompts, gen)
    except (ModelError, ConfigError, ValueError, FileNotFoundError) as e:
        return _fail(str(e))
    print(json.dumps({"prompt": prompts[0], "output": texts[0]}) if a.json else texts[0])
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="studio", description="Tuning Studio: LoRA tuning and base-vs-tuned comparison.")
    p.add_argument("--workspace", help="workspace folder (default: $STUDIO_WORKSPACE or ./workspace)")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)  # --workspace also works after the subcommand
    common.add_argument("--workspace", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    s = sub.add_parser("serve", parents=[common], help="start the browser studio")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost only)")
    s.add_argument("--port", type=int, default=8501)
    s.set_defaults(func=cmd_serve)

    t = sub.add_parser("tune", parents=[common], help="start a LoRA tuning run")
    t.add_argument("--train", help="training data (JSONL, CSV or Parquet); for DPO, preference pairs")
    t.add_argument("--method", choices=("sft", "dpo"), default="sft",
                   help="sft: prompt → answer; dpo: preference pairs (from --queue or --train)")
    t.add_argument("--queue", help="DPO: the labeling queue whose curated pairs to train on")
    t.add_argument("--beta", type=float, default=0.1, help="DPO: higher keeps the model closer to the base")
    t.add_argument("--eval", help="eval data for eval loss during tuning")
    t.add_argument("--task", required=True, choices=TASKS)
    t.add_argument("--model", default=BUNDLED_MODEL,
                   help="bundled model, hub id, local folder, or run:RUN_ID (a finished run, e.g. DPO after SFT)")
    t.add_argument("--template", help="prompt template with {input_text} (default: per task)")
    t.add_argument("--steps", type=int, help="max_iterations (default: recommended for the task and data)")
    t.add_argument("--learning-rate", type=float)
    t.add_argument("--learning-rate-multiplier", type=float, help=f"multiple of {BASE_LEARNING_RATE:g}")
    t.add_argument("--lora-rank", type=int, default=8)
    t.add_argument("--lora-alpha", type=int)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--max-seq-length", type=int, default=512)
    t.add_argument("--eval-every", type=int, default=20)
    t.add_argument("--input-column")
    t.add_argument("--output-column")
    t.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--name")
    t.add_argument("--wait", action="store_true", help="block until the run ends, showing progress")
    t.add_argument("--estimate", action="store_true",
                   help="do not start the run: time a few real steps and print its duration and memory")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_tune)

    e = sub.add_parser("evaluate", parents=[common], help="metrics of the base model, or base vs a tuned run")
    e.add_argument("--data", required=True)
    e.add_argument("--task", required=True,
                   choices=("classification", "summarization", "question_answering", "text_generation"))
    e.add_argument("--constrained", action="store_true",
                   help="classification: answers can only be labels (faster, never off-label)")
    e.add_argument("--batch-size", type=int, help="rows generated together (default: 16 classification, else 8)")
    e.add_argument("--run", help="run id: evaluate base and tuned on the same rows")
    e.add_argument("--model", default=BUNDLED_MODEL)
    e.add_argument("--template", help="override the prompt template")
    e.add_argument("--limit", type=int, help="first N rows only")
    e.add_argument("--input-column", help="column with the prompt text (default: the run's, else auto-detect)")
    e.add_argument("--output-column", help="column with the reference answer")
    e.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    e.add_argument("--out-dir", help="where to write metrics.json and predictions.jsonl")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    g = sub.add_parser("generate", parents=[common], help="answer a prompt with the base model or a tuned run")
    g.add_argument("--prompt", required=True)
    g.add_argument("--run", help="run id (its template and adapter are used)")
    g.add_argument("--base", action="store_true", help="with --run: the base model, same template")
    g.add_argument("--model", default=BUNDLED_MODEL)
    g.add_argument("--raw", action="store_true", help="send the prompt as is, without any template")
    g.add_argument("--max-output-tokens", type=int, default=128)
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--top-k", type=int, default=40)
    g.add_argument("--top-p", type=float, default=0.95)
    g.add_argument("--stop", action="append", help="stop sequence (repeatable)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_generate)

    from core import cli_manage  # runs, queue, data and preference commands

    cli_manage.add_parsers(sub, common)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
