"""Export a tuned run of the bundled model in every shape people take home, through the job road, and
record what each verification found: merged (plain transformers), GGUF f16 and q8_0 with an Ollama
Modelfile (llama.cpp's Python bindings when installed, else transformers' GGUF loader), and the adapter.
The GGUF files are also read by the other GGUF runtime, so both are on record.

    .venv/bin/python benchmarks/export_verify.py RUN_ID [--workspace workspace/sweep] [--prompts 5]
    .venv/bin/python benchmarks/export_verify.py RUN_ID --prompts 50 --quants f16 q8_0 q4_0

Appends one line per export to benchmarks/results.jsonl."""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import jobs, runs  # noqa: E402
from core.export import verify  # noqa: E402
from core.export.chat_template import stop_strings  # noqa: E402
from core.export.config import ExportConfig  # noqa: E402
from core.models import describe_device, load_tokenizer  # noqa: E402
from core.templates import render_prompt  # noqa: E402
from core.worker import run_job  # noqa: E402

EXPORTS = [dict(format="merged"), dict(format="gguf", quant="f16", ollama=True),
           dict(format="gguf", quant="q8_0", ollama=True), dict(format="adapter")]


def other_gguf_runtime(job_dir: Path, result: dict, run_dir: Path, prompts_n: int) -> dict | None:
    """The GGUF file through the runtime the job did not use, on the same prompts."""
    used = result["verification"]["runtime"]
    other = "transformers" if used.startswith("llama.cpp") else "llama.cpp"
    if other == "llama.cpp" and verify.gguf_runtime() != "llama.cpp":
        return None  # bindings not installed
    config = runs.read_json(run_dir / "config.json")
    texts = verify.prompts_for(config, prompts_n)
    tok = load_tokenizer(str(run_dir / "adapter"))
    prompts = [render_prompt(tok, config["template"], t) for t in texts]
    name, answers = verify.gguf_answers(job_dir / result["download"], prompts, verify.answer_tokens(config),
                                        stop_strings(tok), runtime=other)
    studio = [r["studio"] for r in result["verification"]["rows"]]
    return {"runtime": name, **{k: v for k, v in verify.compare(texts, studio, answers).items() if k != "rows"}}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("run_id")
    p.add_argument("--workspace", default=str(ROOT / "workspace" / "sweep"))
    p.add_argument("--prompts", type=int, default=5)
    p.add_argument("--quants", nargs="*", default=None,
                   help="GGUF exports only, of these types (e.g. f16 q8_0 q4_0), instead of the four exports")
    a = p.parse_args()
    ws = Path(a.workspace).resolve()
    run_dir = runs.run_path(ws, a.run_id)
    todo = [dict(format="gguf", quant=q, ollama=True) for q in a.quants] if a.quants else EXPORTS
    for settings in todo:
        cfg = ExportConfig(run_id=a.run_id, device="cpu", verify_prompts=a.prompts, **settings)
        job_dir = jobs.create_export(ws, cfg)
        t0 = time.perf_counter()
        run_job(job_dir)
        seconds = time.perf_counter() - t0
        status = runs.read_status(job_dir)
        if status.get("state") != "succeeded":
            print(f"{cfg.label}: {status.get('state')} {status.get('error')}", file=sys.stderr)
            return 1
        result = runs.read_json(job_dir / "export.json")
        check = result["verification"]
        line = {"date": runs.now_iso(), "benchmark": "export_verify", "machine": platform.machine(),
                "device": describe_device("cpu"), "cores": os.cpu_count(), "run_id": a.run_id,
                "model": runs.read_json(run_dir / "config.json")["model"], "export": cfg.label,
                "bytes": sum(f["bytes"] for f in result["files"]), "seconds": round(seconds, 1),
                "runtime": check["runtime"], "prompts": check["prompts"], "identical": check["identical"],
                "chat_template_matches": result.get("chat_template_matches"),
                "tensor_types": (result.get("gguf") or {}).get("tensor_types")}
        if cfg.format == "gguf":
            line["second_gguf_runtime"] = other_gguf_runtime(job_dir, result, run_dir, a.prompts)
        print(json.dumps(line))
        with open(ROOT / "benchmarks" / "results.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
