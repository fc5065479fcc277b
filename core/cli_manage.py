"""`studio` subcommands that manage things rather than run models: runs and the queue
(runs, status, cancel, resume, compare, rename, delete, queue), datasets (data check|add|list|delete)
and preference pairs (prefs import|export|stats|generate). core.cli builds the rest of the parser."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from core import jobs, runs
from core.cli import _fail, _progress_line, _with_run
from core.config import TASKS
from core.data import DataError, load_dataset


def cmd_runs(a) -> int:
    ws = runs.workspace_dir(a.workspace)
    jobs.start_next(ws)  # recovers the queue if a worker was killed
    rows = [runs.summary(r) for r in runs.list_runs(ws)]
    if a.json:
        print(json.dumps(rows))
        return 0
    waiting = jobs.queue(ws)
    for r in rows:
        best = f"best eval {r['best_eval_loss']:.4f} @ {r['best_step']}" if r["best_eval_loss"] is not None else ""
        where = f" #{waiting.index(r['run_id']) + 1}" if r["run_id"] in waiting else ""
        print(f"{r['run_id']:<38} {r['name'][:20]:<20} {(r['state'] or '?') + where:<11} {r['task'] or '':<15} "
              f"step {r['steps']}/{r['max_steps']}  {r['dataset']}  {best}")
    return 0


def cmd_compare(a) -> int:
    ws = runs.workspace_dir(a.workspace)
    try:
        dirs = [runs.run_path(ws, r) for r in a.run_ids]
    except (ValueError, FileNotFoundError) as e:
        return _fail(str(e))
    result = runs.compare(dirs)
    if a.json:
        print(json.dumps(result))
        return 0
    for r in result["runs"]:
        best = f"{r['best_eval_loss']:.4f} @ step {r['best_step']}" if r["best_eval_loss"] is not None else "-"
        last = next((m["loss"] for m in reversed(result["metrics"][r["run_id"]]) if "loss" in m), None)
        print(f"{r['run_id']}  {r['state']}  steps {r['steps']}/{r['max_steps']}  best eval loss {best}  "
              f"last train loss {last if last is None else round(last, 4)}")
    print("\nconfig differences:" if result["config_diff"] else "\nsame config")
    for k, vals in result["config_diff"].items():
        print(f"  {k}: " + "  |  ".join(json.dumps(v) for v in vals))
    return 0


def cmd_queue(a) -> int:
    ws = runs.workspace_dir(a.workspace)
    if a.move:
        try:
            jobs.move_in_queue(ws, a.move[0], int(a.move[1]) - 1)
        except ValueError as e:
            return _fail(str(e))
    for i, run_id in enumerate(jobs.queue(ws), start=1):
        print(f"{i}. {run_id}")
    return 0


@_with_run
def cmd_rename(a, run_dir) -> None:
    runs.rename(run_dir, a.name)
    print(f"run {a.run_id} is now called {a.name!r}")


def cmd_delete(a) -> int:
    try:
        run_dir = runs.run_path(runs.workspace_dir(a.workspace), a.run_id)
        if not a.yes:
            return _fail(f"this deletes {run_dir} with its adapter and evaluations; add --yes to confirm")
        jobs.delete_run(run_dir)
    except (ValueError, FileNotFoundError) as e:
        return _fail(str(e))
    print(f"deleted run {a.run_id}")
    return 0


@_with_run
def cmd_status(a, run_dir) -> None:
    print(json.dumps(runs.read_status(run_dir), indent=None if a.json else 2))


def cmd_resume(a) -> int:
    try:
        run_dir = runs.run_path(runs.workspace_dir(a.workspace), a.run_id)
        jobs.resume(run_dir)
    except (ValueError, FileNotFoundError) as e:
        return _fail(str(e))
    print(f"run {a.run_id} resumed from its last checkpoint", flush=True)
    if not a.wait:
        return 0
    status = jobs.wait(run_dir, lambda st, new: new and print(_progress_line(st, runs.read_metrics(run_dir)),
                                                              flush=True))
    print(f"run {a.run_id}: {status['state']}")
    return 0 if status["state"] == "succeeded" else 1


@_with_run
def cmd_cancel(a, run_dir) -> None:
    jobs.cancel(run_dir)
    print(f"cancel requested for {a.run_id}; it stops after the current step")


def cmd_data_check(a) -> int:
    from core.datacheck import check_dataset, format_report, token_preflight

    report = check_dataset(a.file, task=a.task, format=a.format, input_column=a.input_column,
                           output_column=a.output_column, eval_path=a.eval)
    if report["usable"] and a.model:  # token lengths and truncation need the model's tokenizer
        from core.models import ModelError, load_tokenizer, resolve_model
        from core.templates import default_template

        try:
            tok = load_tokenizer(resolve_model(a.model, runs.workspace_dir(a.workspace)))
        except ModelError as e:
            return _fail(str(e))
        data = load_dataset(a.file, a.input_column, a.output_column, format=a.format)
        template = a.template or default_template(a.task or "text_generation", data.labels)
        pre = token_preflight(data, tok, template, a.max_seq_length, show=1)
        report["tokens"] = {k: v for k, v in pre.items() if not k.endswith("_tokens")}
    if a.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(format_report(report))
        t = report.get("tokens")
        if t:
            print(f"tokens (prompt): {t['prompt_tokens_summary']};  answers: {t['answer_tokens_summary']}")
            print(f"max length {t['max_length']}: {len(t['truncated_lines'])} examples cut, "
                  f"{len(t['dropped_lines'])} dropped (prompt alone too long)")
    return 0 if report["usable"] else 1


def cmd_data_add(a) -> int:
    from core.catalog import register_dataset

    try:
        entry = register_dataset(runs.workspace_dir(a.workspace), a.file, a.name, a.split, a.eval_fraction,
                                 a.split_column, a.input_column, a.output_column)
    except DataError as e:
        return _fail(str(e))
    print(json.dumps(entry) if a.json else
          f"dataset {entry['name']}: {entry['format']}, {entry['train_rows']} train / {entry['eval_rows']} eval rows "
          f"({entry['split']})\n  {entry['train_file']}")
    return 0


def cmd_data_list(a) -> int:
    from core.catalog import list_datasets

    items = list_datasets(runs.workspace_dir(a.workspace))
    if a.json:
        print(json.dumps(list(items.values())))
    for e in ([] if a.json else items.values()):
        print(f"{e['name']:<24} {e['format']:<14} {e['train_rows']:>7} train {e['eval_rows']:>6} eval  {e['split']}")
    return 0


def cmd_data_delete(a) -> int:
    from core.catalog import delete_dataset

    try:
        delete_dataset(runs.workspace_dir(a.workspace), a.name)
    except DataError as e:
        return _fail(str(e))
    print(f"deleted dataset {a.name}")
    return 0


def cmd_prefs(a) -> int:
    from core import preferences as prefs

    ws = runs.workspace_dir(a.workspace)
    try:
        if a.prefs_command == "import":
            n = prefs.import_file(ws, a.file, a.queue)
            print(f"imported {n} pairs into queue {a.queue}")
        elif a.prefs_command == "generate":
            from core.candidates import generate_candidates

            sides = [{"run": a.run_a, "model": a.model_a, "temperature": a.temperature_a, "seed": a.seed},
                     {"run": a.run_b, "model": a.model_b, "temperature": a.temperature_b, "seed": a.seed + 1}]
            def progress(done, total):
                print(f"\r{done}/{total} answers", end="", file=sys.stderr, flush=True)
                if a.status_dir:
                    runs.update_status(a.status_dir, state="running", done=done, total=total,
                                       heartbeat_ts=time.time())

            try:
                n = generate_candidates(ws, a.prompts, a.queue, *sides, limit=a.limit,
                                        max_output_tokens=a.max_output_tokens, progress=progress)
            except Exception as e:
                if a.status_dir:
                    runs.update_status(a.status_dir, state="failed", error=f"{type(e).__name__}: {e}")
                raise
            if a.status_dir:
                runs.update_status(a.status_dir, state="succeeded", pairs=n, finished=runs.now_iso())
            print(f"\nadded {n} pairs to queue {a.queue} (identical answers are left out)")
        elif a.prefs_command == "export":
            rows = prefs.export(ws, a.queue, a.format)
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
            if a.out:
                Path(a.out).write_text(text, encoding="utf-8")
                print(f"wrote {len(rows)} pairs to {a.out}", file=sys.stderr)
            else:
                sys.stdout.write(text)
        else:
            result = {**prefs.progress(ws, a.queue), **prefs.agreement(ws, a.queue)}
            if a.json:
                print(json.dumps(result))
            else:
                print(f"queue {a.queue}: {result['items']} items, {result['complete']} fully labelled, "
                      f"{result['labels']} labels")
                print("per choice: " + ", ".join(f"{k} {v}" for k, v in result["per_choice"].items()))
                for lab, c in result["per_labeler"].items():
                    print(f"  {lab}: " + ", ".join(f"{k} {v}" for k, v in c.items()))
                for pair, v in result["cohen"].items():
                    print(f"Cohen's kappa {pair}: {v['cohen_kappa']:.3f} on {v['items']} items "
                          f"(raw agreement {v['raw_agreement']:.0%})")
                if result["fleiss"]:
                    print(f"Fleiss' kappa: {result['fleiss']['kappa']:.3f} ({result['fleiss']['items']} items, "
                          f"{result['fleiss']['raters_per_item']} raters each)")
    except (ValueError, DataError) as e:
        return _fail(str(e))
    return 0


def _prefs_parser(sub, common) -> None:
    pp = sub.add_parser("prefs", parents=[common], help="preference pairs: import, export, agreement stats")
    psub = pp.add_subparsers(dest="prefs_command", required=True)
    i = psub.add_parser("import", parents=[common], help="add pairs from a file to a labeling queue")
    i.add_argument("file")
    i.add_argument("--queue", required=True)
    e = psub.add_parser("export", parents=[common], help="curated pairs (ties and both-bad left out)")
    e.add_argument("--queue", required=True)
    e.add_argument("--format", choices=("vertex", "dpo"), default="vertex")
    e.add_argument("--out")
    st = psub.add_parser("stats", parents=[common], help="counts per choice and labeler, kappa")
    st.add_argument("--queue", required=True)
    st.add_argument("--json", action="store_true")
    g = psub.add_parser("generate", parents=[common],
                        help="two candidate answers per prompt (two runs/models or two temperatures) into a queue")
    g.add_argument("--prompts", required=True, help="a file of prompts (input_text / prompt / text column)")
    g.add_argument("--queue", required=True)
    for side in ("a", "b"):
        g.add_argument(f"--run-{side}", help=f"candidate {side.upper()}: a tuned run id")
        g.add_argument(f"--model-{side}", help=f"candidate {side.upper()}: a model (default: the bundled one)")
    g.add_argument("--temperature-a", type=float, default=0.0)
    g.add_argument("--temperature-b", type=float, default=0.9)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--limit", type=int)
    g.add_argument("--max-output-tokens", type=int, default=128)
    g.add_argument("--status-dir", help="write progress to STATUS_DIR/status.json (for background jobs)")
    for p in (i, e, st, g):
        p.set_defaults(func=cmd_prefs)


def _data_parser(sub, common) -> None:
    from core.catalog import SPLITS
    from core.data import FORMATS

    d = sub.add_parser("data", parents=[common], help="check and register datasets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    c = dsub.add_parser("check", parents=[common], help="report every problem and statistic; exit 1 if unusable")
    c.add_argument("file")
    c.add_argument("--format", choices=FORMATS)
    c.add_argument("--task", choices=TASKS)
    c.add_argument("--eval", help="an eval file: checked too, and for overlap with the training file")
    c.add_argument("--input-column")
    c.add_argument("--output-column")
    c.add_argument("--model", help="count tokens with this model's tokenizer (e.g. the bundled model)")
    c.add_argument("--template", help="prompt template for the token counts (default: per task)")
    c.add_argument("--max-seq-length", type=int, default=512)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_data_check)
    a = dsub.add_parser("add", parents=[common], help="register a dataset in the workspace, split into train/eval")
    a.add_argument("file")
    a.add_argument("--name", required=True)
    a.add_argument("--split", default="AUTO_SPLIT", type=str.upper, choices=SPLITS)
    a.add_argument("--eval-fraction", type=float, default=0.2)
    a.add_argument("--split-column", help="CUSTOM: boolean column (true = eval); SEQ: column to sort by")
    a.add_argument("--input-column")
    a.add_argument("--output-column")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_data_add)
    ls = dsub.add_parser("list", parents=[common], help="registered datasets")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_data_list)
    rm = dsub.add_parser("delete", parents=[common], help="remove a registered dataset")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_data_delete)


def add_parsers(sub, common) -> None:
    r = sub.add_parser("runs", parents=[common], help="list runs")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_runs)
    st = sub.add_parser("status", parents=[common], help="a run's status")
    st.add_argument("run_id")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)
    c = sub.add_parser("cancel", parents=[common], help="stop a running run after its current step")
    c.add_argument("run_id")
    c.set_defaults(func=cmd_cancel)
    cp = sub.add_parser("compare", parents=[common], help="two or more runs: results, curves and config diff")
    cp.add_argument("run_ids", nargs="+")
    cp.add_argument("--json", action="store_true")
    cp.set_defaults(func=cmd_compare)
    rn = sub.add_parser("rename", parents=[common], help="give a run a readable name")
    rn.add_argument("run_id")
    rn.add_argument("name")
    rn.set_defaults(func=cmd_rename)
    dl = sub.add_parser("delete", parents=[common], help="delete a run folder")
    dl.add_argument("run_id")
    dl.add_argument("--yes", action="store_true", help="confirm")
    dl.set_defaults(func=cmd_delete)
    qu = sub.add_parser("queue", parents=[common], help="runs waiting to start; reorder with --move")
    qu.add_argument("--move", nargs=2, metavar=("RUN_ID", "POSITION"), help="put a waiting run at POSITION (1 = next)")
    qu.set_defaults(func=cmd_queue)
    rs = sub.add_parser("resume", parents=[common], help="go on from a failed or cancelled run's last checkpoint")
    rs.add_argument("run_id")
    rs.add_argument("--wait", action="store_true")
    rs.set_defaults(func=cmd_resume)
    _data_parser(sub, common)
    _prefs_parser(sub, common)
