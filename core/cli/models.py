"""`studio` subcommands that run models: serve, tune, evaluate, generate. Tuning and evaluation are
jobs on the one road (core.jobs → the device's queue → core.worker); these commands submit them and,
when asked to (or to print results), wait."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from core import jobs, runs
from core.cli.common import (
    QUEUE,
    RUN_ID,
    fail,
    model_arg,
    nonblank,
    start_run,
    submit_and_report,
    wait_and_show,
    workspace,
)
from core.cli.executor import executor_args, set_executor
from core.config import BASE_LEARNING_RATE, BUNDLED_MODEL, DEFAULT_CALIBRATION, DPO_LEARNING_RATE, EVAL_MODE_WORDS, EVAL_MODES, \
    SMALL_MODEL_LEARNING_RATE, SMALL_MODEL_PARAMETERS, ConfigError, EvalConfig, GenerationConfig, recorded_eval_mode
from core.data import DataError
from core.executor import describe, read_setting
from core.generate import generate_texts
from core.models import ModelError, load_model
from core.names import ADAPTER_DIR, CONFIG_FILE, DEVICES, EVAL_TASKS, METHODS, TASKS
from core.requests import tune_config
from core.templates import render_prompt, template_for


def cmd_serve(a) -> int:
    """Exec the studio's launcher (studio/server.py: Streamlit behind a Host-header guard) from the repo root,
    so .streamlit/config.toml (theme, upload size) applies. core never imports streamlit: this only execs."""
    root = Path(__file__).resolve().parents[2]
    os.environ["STUDIO_WORKSPACE"] = str(workspace(a))
    if a.executor is not None:  # where the queue sends jobs: this machine or a Ray cluster (core.executor)
        code = set_executor(workspace(a), a)
        if code:
            return code
    print(describe(read_setting(workspace(a))), flush=True)
    argv = [sys.executable, "-m", "studio.server", "--address", a.host, "--port", str(a.port)]
    for name in a.allow_host:
        argv += ["--allow-host", name]
    print(f"Tuning Studio on http://{a.host}:{a.port}  (workspace: {os.environ['STUDIO_WORKSPACE']})", flush=True)
    if a.host in ("0.0.0.0", "::") and not a.allow_host:
        print("  only requests for localhost are answered; name the host others use with --allow-host NAME",
              flush=True)
    os.chdir(root)
    os.execv(sys.executable, argv)
    return 0


def tune_request(a) -> dict:
    """`studio tune` flags as a request for core.requests.tune_config."""
    request = dict(method=a.method, task=a.task, train_file=a.train, eval_file=a.eval,
                   preference_queue=a.queue, model=a.model, template=a.template, steps=a.steps,
                   learning_rate=a.learning_rate, learning_rate_multiplier=a.learning_rate_multiplier,
                   batch_size=a.batch_size, max_seq_length=a.max_seq_length, eval_every=a.eval_every,
                   lora_rank=a.lora_rank, lora_alpha=a.lora_alpha, device=a.device, seed=a.seed, name=a.name or "",
                   gradient_checkpointing=a.gradient_checkpointing, processes=a.processes)
    if a.method == "dpo":
        request["beta"] = a.beta
    else:
        request.update(input_column=a.input_column, output_column=a.output_column)
    return request


def cmd_tune(a) -> int:
    ws = workspace(a)
    try:
        cfg, why = tune_config(ws, **tune_request(a))
    except (DataError, ConfigError) as e:
        return fail(str(e))
    if a.estimate:
        return _estimate(ws, cfg, a.json)
    run_dir = jobs.create_tune(ws, cfg)
    state = start_run(run_dir, why, wait=a.wait, as_json=a.json)
    if a.json:
        print(json.dumps({"run_id": run_dir.name, "run_dir": str(run_dir), "status": state}))
    return 0 if state in ("succeeded", "started", "queued", "running") else 1


def _estimate(ws: Path, cfg, as_json: bool) -> int:
    if not as_json:
        print(f"timing {jobs.ESTIMATE_STEPS} real steps to estimate the run…", flush=True)
    folder = jobs.create_estimate(ws, cfg)
    submit_and_report(folder, quiet=as_json)
    jobs.wait(folder)
    est = jobs.estimate_from(folder, cfg.to_dict())
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
    ws = workspace(a)
    try:
        cfg = EvalConfig(data=str(Path(a.data).resolve()), task=a.task, run_id=a.run, model=a.model, limit=a.limit,
                         template=a.template, input_column=a.input_column, output_column=a.output_column,
                         mode=a.mode, constrained=a.constrained, batch_size=a.batch_size, device=a.device,
                         calibration=a.calibration)
        if a.run:
            run_dir = runs.run_path(ws, a.run)
            if not (run_dir / ADAPTER_DIR).exists():
                return fail(f"run {a.run} has no adapter yet (state: {runs.read_status(run_dir).get('state')})")
        job_dir = jobs.create_evaluation(ws, cfg)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        return fail(str(e))
    submit_and_report(job_dir, quiet=a.json)
    status = wait_and_show(job_dir, quiet=a.json, stream=sys.stderr)
    if status.get("state") != "succeeded":
        return fail(f"{status.get('error') or 'the evaluation ' + str(status.get('state'))}"
                    + (f"\n  {status['hint']}" if status.get("hint") else ""), code=1)
    metrics = runs.read_json(job_dir / "metrics.json", {})
    result = {name: metrics[name] for name in ("base", "tuned") if name in metrics}
    if a.json:
        print(json.dumps(result))
    else:
        print(f"answers: {EVAL_MODE_WORDS[recorded_eval_mode(metrics)]}")
        for name, m in result.items():
            _print_metrics(name, m, a.task)
        print(f"\n(rows and answers in {job_dir})")
    return 0


def cmd_generate(a) -> int:
    ws = workspace(a)
    try:
        gen = GenerationConfig(max_output_tokens=a.max_output_tokens, temperature=a.temperature, top_k=a.top_k,
                               top_p=a.top_p, stop_sequences=a.stop or [], seed=a.seed)
        config = None
        if a.run:
            run_dir = runs.run_path(ws, a.run)
            config = runs.read_json(run_dir / CONFIG_FILE, {}) or {}
            model, tok, _ = load_model(config.get("model") or BUNDLED_MODEL, ws, a.device, adapter=run_dir / ADAPTER_DIR)
        else:
            model, tok, _ = load_model(a.model, ws, a.device)
        prompts = [a.prompt if a.raw else render_prompt(tok, template_for(config), a.prompt)]
        if a.run and a.base:
            with model.disable_adapter():
                texts = generate_texts(model, tok, prompts, gen)
        else:
            texts = generate_texts(model, tok, prompts, gen)
    except (ModelError, ConfigError, ValueError, FileNotFoundError) as e:
        return fail(str(e))
    print(json.dumps({"prompt": prompts[0], "output": texts[0]}) if a.json else texts[0])
    return 0


def add_parsers(sub, common) -> None:
    s = sub.add_parser("serve", parents=[common], help="start the browser studio")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost only)")
    s.add_argument("--port", type=int, default=8501)
    s.add_argument("--allow-host", action="append", default=[], metavar="NAME", type=nonblank,
                   help="also answer requests whose Host is NAME (repeatable); by default only localhost, "
                        "127.0.0.1, [::1] and --host are, so other sites cannot reach the studio (DNS rebinding)")
    executor_args(s)
    s.set_defaults(func=cmd_serve)

    t = sub.add_parser("tune", parents=[common], help="start a LoRA tuning run")
    t.add_argument("--train", help="training data (JSONL, CSV or Parquet); for DPO, preference pairs")
    t.add_argument("--method", choices=METHODS, default="sft",
                   help="sft: prompt → answer; dpo: preference pairs (from --queue or --train)")
    t.add_argument("--queue", type=QUEUE, help="DPO: the labeling queue whose curated pairs to train on")
    t.add_argument("--beta", type=float, default=0.1, help="DPO: higher keeps the model closer to the base")
    t.add_argument("--eval", help="eval data for eval loss during tuning")
    t.add_argument("--task", required=True, choices=TASKS)
    t.add_argument("--model", type=model_arg, default=BUNDLED_MODEL,
                   help="bundled model, hub id, local folder, or run:RUN_ID (a finished run, e.g. DPO after SFT)")
    t.add_argument("--template", help="prompt template with {input_text} (default: per task)")
    t.add_argument("--steps", type=int, help="max_iterations (default: recommended for the task and data)")
    t.add_argument("--learning-rate", type=float)
    t.add_argument("--learning-rate-multiplier", type=float,
                   help=f"multiple of the method's base rate (supervised: {SMALL_MODEL_LEARNING_RATE:g} for models "
                        f"up to {SMALL_MODEL_PARAMETERS / 1e6:.0f}M parameters, {BASE_LEARNING_RATE:g} above; "
                        f"DPO: {DPO_LEARNING_RATE:g})")
    t.add_argument("--gradient-checkpointing", action="store_true",
                   help="recompute activations in the backward pass: much less memory, about a third slower")
    t.add_argument("--lora-rank", type=int, default=8)
    t.add_argument("--lora-alpha", type=int)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--max-seq-length", type=int, default=512)
    t.add_argument("--eval-every", type=int, help="steps between eval passes (default: three a run)")
    t.add_argument("--input-column")
    t.add_argument("--output-column")
    t.add_argument("--device", default="auto", choices=DEVICES)
    t.add_argument("--processes", type=int, default=1,
                   help="train on N GPUs at once, one process each (torchrun, data parallel; on a CPU, N gloo "
                        "processes); the batch size must be a multiple of N")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--name")
    t.add_argument("--wait", action="store_true", help="block until the run ends, showing progress")
    t.add_argument("--estimate", action="store_true",
                   help="do not start the run: time a few real steps and print its duration and memory")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_tune)

    e = sub.add_parser("evaluate", parents=[common], help="metrics of the base model, or base vs a tuned run")
    e.add_argument("--data", required=True)
    e.add_argument("--task", required=True, choices=EVAL_TASKS)
    e.add_argument("--mode", choices=EVAL_MODES, default="auto",
                   help="how answers are made: score = each label scored by log-likelihood, the best is the "
                        "answer (fast, every answer a label); generate = the model writes freely (slower, shows "
                        "answers outside the labels); constrained = writing restricted to the labels; "
                        "auto (default) = score for classification, generate otherwise")
    e.add_argument("--constrained", action="store_true", help="the same as --mode constrained")
    e.add_argument("--calibration", type=float, default=DEFAULT_CALIBRATION,
                   help=f"label scoring: the share (0-1) of the model's lean towards labels, measured on empty "
                        f"texts, taken off before the best label is chosen (default {DEFAULT_CALIBRATION}; 0 = plain "
                        "log-likelihood)")
    e.add_argument("--batch-size", type=int,
                   help="rows answered together (default: 8 scoring, 16 generating classification, else 8)")
    e.add_argument("--run", type=RUN_ID, help="run id: evaluate base and tuned on the same rows")
    e.add_argument("--model", type=model_arg, default=BUNDLED_MODEL)
    e.add_argument("--template", help="override the prompt template")
    e.add_argument("--limit", type=int, help="first N rows only")
    e.add_argument("--input-column", help="column with the prompt text (default: the run's, else auto-detect)")
    e.add_argument("--output-column", help="column with the reference answer")
    e.add_argument("--device", default="auto", choices=DEVICES)
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    g = sub.add_parser("generate", parents=[common], help="answer a prompt with the base model or a tuned run")
    g.add_argument("--prompt", required=True)
    g.add_argument("--run", type=RUN_ID, help="run id (its template and adapter are used)")
    g.add_argument("--base", action="store_true", help="with --run: the base model, same template")
    g.add_argument("--model", type=model_arg, default=BUNDLED_MODEL)
    g.add_argument("--raw", action="store_true", help="send the prompt as is, without any template")
    g.add_argument("--max-output-tokens", type=int, default=128)
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--top-k", type=int, default=40)
    g.add_argument("--top-p", type=float, default=0.95)
    g.add_argument("--stop", action="append", help="stop sequence (repeatable)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto", choices=DEVICES)
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_generate)
