"""`studio export RUN_ID`: take a run home as an adapter zip, a merged safetensors folder or a GGUF file (with
an Ollama Modelfile), verified by a second runtime. A job on the job road like any other; this command
waits for it unless told not to. `studio export RUN_ID --list` shows a run's exports."""
from __future__ import annotations

import json
import sys

from core import runs
from core.cli.common import RUN_ID, fail, submit_and_report, wait_and_show, workspace
from core.config import ConfigError
from core.export.config import FORMATS, GGUF_QUANTS, ExportConfig
from core.export.listing import human_bytes, list_exports, verification_line
from core.jobs import create_export
from core.names import DEVICES


def add_parsers(sub, common) -> None:
    p = sub.add_parser("export", parents=[common], help="export a run: adapter zip, merged model, GGUF (+ Ollama)",
                       description="Export a finished run (or one of its checkpoints). Each export lands in "
                                   "runs/RUN_ID/exports/<format>/ and ends with a verification: a second runtime "
                                   "answers a few eval prompts greedily and its answers are compared with the "
                                   "studio's own.")
    p.add_argument("run_id", type=RUN_ID, help="the run to export (its id)")
    p.add_argument("--format", choices=FORMATS, default="adapter",
                   help="adapter (PEFT folder, zipped), merged (safetensors folder) or gguf")
    p.add_argument("--quant", choices=GGUF_QUANTS, default=None,
                   help="GGUF tensor type of the weights (default f16; q8_0 is a quarter of f32)")
    p.add_argument("--ollama", action="store_true", help="GGUF: also write an Ollama Modelfile")
    p.add_argument("--checkpoint", type=int, default=None, metavar="STEP",
                   help="export the checkpoint of this step instead of the run's adapter")
    p.add_argument("--verify", type=int, default=5, metavar="N",
                   help="eval prompts the second runtime answers (0: no verification)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--no-wait", dest="wait", action="store_false", help="queue the export and return")
    p.add_argument("--list", action="store_true", help="list the run's exports instead")
    p.add_argument("--json", action="store_true", help="print export.json (or the list) as JSON")
    p.set_defaults(func=cmd_export)


def _show(item: dict) -> str:
    status, result = item["status"], item["result"]
    head = f"{item['label']:<16} {status.get('state', '?'):<10}"
    if status.get("state") == "succeeded":
        return (f"{head} {human_bytes(item['bytes']):>9}  {verification_line(result)}\n"
                f"{'':<27} {item['dir'] / result.get('download', '')}")
    if status.get("state") == "failed":
        return f"{head} {status.get('error') or ''}\n{'':<27} {status.get('hint') or ''}"
    return f"{head} {status.get('phase') or ''}"


def cmd_export(a) -> int:
    ws = workspace(a)
    try:
        run_dir = runs.run_path(ws, a.run_id)
    except (ValueError, FileNotFoundError) as e:
        return fail(str(e))
    if a.list:
        items = list_exports(run_dir)
        if a.json:
            print(json.dumps([{**i, "dir": str(i["dir"])} for i in items], indent=2))
        elif not items:
            print(f"run {a.run_id} has no exports yet")
        else:
            print("\n".join(_show(i) for i in items))
        return 0
    if a.quant and a.format != "gguf":
        return fail(f"--quant is for --format gguf (got --format {a.format})")
    try:
        cfg = ExportConfig(run_id=a.run_id, format=a.format, quant=a.quant or "f16", ollama=a.ollama,
                           checkpoint=a.checkpoint, verify_prompts=a.verify, device=a.device)
        if runs.read_status(run_dir).get("state") != "succeeded" and cfg.checkpoint is None \
                and not runs.has_adapter(run_dir):
            return fail(f"run {a.run_id} has no adapter yet; export it when it has finished, or name a "
                        "--checkpoint")
        job_dir = create_export(ws, cfg)
    except (ConfigError, ValueError) as e:
        return fail(str(e))
    submit_and_report(job_dir, quiet=a.json)
    if not a.json:
        print(f"export {cfg.label} of {runs.display_name(run_dir)}: {job_dir}", flush=True)
    if not a.wait:
        return 0
    status = wait_and_show(job_dir, quiet=a.json, stream=sys.stderr)
    item = next(i for i in list_exports(run_dir) if i["label"] == cfg.label)
    if a.json:
        print(json.dumps({"status": status, "export": item["result"]}, indent=2))
    else:
        print(_show(item))
        if item["result"].get("ollama_command"):
            print(f"{'':<27} Ollama, in that folder: {item['result']['ollama_command']}")
    return 0 if status.get("state") == "succeeded" else 1
