"""An export job from start to end (kind `export`, folder runs/<id>/exports/<label>/): build the artifact,
verify it with a second implementation, write the model card and export.json (what the page lists)."""
from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path
from typing import Callable

from core import runs
from core.config import BUNDLED_MODEL
from core.export import verify
from core.export.card import model_card
from core.export.chat_template import ollama_modelfile, stop_strings
from core.export.config import ExportConfig
from core.export.gguf_file import write_gguf
from core.export.merge import adapter_source, copy_adapter, merge_run, run_template
from core.models import RUN_MODEL_PREFIX, load_tokenizer, resolve_model
from core.names import CONFIG_FILE, EXPORT_FILE, RUNS_DIR

Phase = Callable[..., None]  # phase(name, done=None, total=None); raises to cancel


def file_stem(run_dir: Path) -> str:
    """The run's name as a file name: what it was called, in the characters every system accepts."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", runs.display_name(run_dir)).strip("-.")
    return stem or run_dir.name


def root_base_model(workspace: Path, model: str) -> str:
    """The model a run ultimately started from (a DPO run on `run:ID` started from that run's base)."""
    seen = set()
    while model.startswith(RUN_MODEL_PREFIX) and model not in seen:
        seen.add(model)
        config = runs.read_json(workspace / RUNS_DIR / model[len(RUN_MODEL_PREFIX):] / CONFIG_FILE, {}) or {}
        model = config.get("model") or BUNDLED_MODEL
    return model


def pre_tokenizer(workspace: Path, model: str) -> str:
    """llama.cpp's name for the tokenizer's pre-split rules: read from the bundled model's own GGUF file;
    `default` for other models (llama.cpp then splits text its generic way; the verification shows it)."""
    if root_base_model(workspace, model) != BUNDLED_MODEL:
        return "default"
    from gguf import GGUFReader

    from core.models import bundled_gguf_path

    field = GGUFReader(str(bundled_gguf_path())).fields.get("tokenizer.ggml.pre")
    return str(field.contents()) if field is not None else "default"


def _sizes(folder: Path) -> list[dict]:
    return [{"name": str(p.relative_to(folder)), "bytes": p.stat().st_size}
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in {"job.json", "status.json", "worker.log",
                                                                                 EXPORT_FILE}]


def _verify(workspace: Path, cfg: ExportConfig, run_config: dict, adapter: Path, phase: Phase,
            answer: Callable[[list[str], list[str]], tuple[str, list[str]]]) -> dict | None:
    """The studio's answers for the first eval prompts against `answer(texts, prompts)` →
    (runtime name, answers) of the exported artifact."""
    if not cfg.verify_prompts:
        return None
    texts = verify.prompts_for(run_config, cfg.verify_prompts)
    phase("verifying: the studio's own answers")
    prompts, studio = verify.studio_answers(workspace, run_config, adapter, texts, device=_device(cfg))
    phase("verifying: the exported model's answers")
    runtime, exported = answer(texts, prompts)
    return {"runtime": runtime, **verify.compare(texts, studio, exported)}


def _device(cfg: ExportConfig) -> str:
    from core.models import pick_device

    return pick_device(cfg.device)


def run_export(workspace: str | Path, cfg: ExportConfig, job_dir: str | Path, phase: Phase) -> dict:
    workspace, job_dir = Path(workspace), Path(job_dir)
    run_dir = runs.run_path(workspace, cfg.run_id)
    run_config, template = run_template(run_dir)
    adapter = adapter_source(run_dir, cfg.checkpoint)
    source = f"checkpoint step {cfg.checkpoint}" if cfg.checkpoint else "the run's adapter"
    stem = file_stem(run_dir) + (f"-step{cfg.checkpoint}" if cfg.checkpoint else "")
    tokens = verify.answer_tokens(run_config)
    result: dict = {"format": cfg.format, "quant": cfg.quant if cfg.format == "gguf" else None,
                    "checkpoint": cfg.checkpoint, "run_id": cfg.run_id}

    if cfg.format == "adapter":
        phase("copying the adapter", 0, 3)
        folder = job_dir / f"{stem}-adapter"
        copy_adapter(adapter, folder)
        base = resolve_model(run_config.get("model", ""), workspace)
        phase("verifying", 1, 3)
        result["verification"] = _verify(workspace, cfg, run_config, adapter, phase, lambda texts, prompts: (
            "peft on the base model", verify.adapter_answers(base, folder, prompts, tokens)))
        how = ("```python\nfrom peft import AutoPeftModelForCausalLM\n"
               f"model = AutoPeftModelForCausalLM.from_pretrained('{folder.name}')\n```\n"
               f"(base model: `{run_config.get('model')}`)")
        card = model_card(workspace, run_dir, fmt="adapter", source=source, files=[p["name"] for p in _sizes(folder)],
                          how_to_load=how, verification=result["verification"])
        (folder / "README.md").write_text(card, encoding="utf-8")
        phase("zipping", 2, 3)
        archive = job_dir / f"{stem}-adapter.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(folder.rglob("*")):
                z.write(p, p.relative_to(job_dir))
        result["download"] = archive.name
    elif cfg.format == "merged":
        folder = job_dir / f"{stem}-merged"
        phase("merging", 0, 3)
        merged = merge_run(workspace, run_dir, adapter, folder, progress=lambda p: phase(p, 0, 3))
        phase("verifying", 1, 3)

        def ask_merged(texts, prompts):
            merged_prompts, answers = verify.merged_answers(folder, texts, tokens)
            result["chat_template_matches"] = merged_prompts == prompts
            return "transformers on the merged folder", answers
        result["verification"] = _verify(workspace, cfg, run_config, adapter, phase, ask_merged)
        result["parameters"] = merged["parameters"]
        how = ("```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
               f"tok = AutoTokenizer.from_pretrained('{folder.name}')\n"
               f"model = AutoModelForCausalLM.from_pretrained('{folder.name}')\n"
               "prompt = tok.apply_chat_template([{'role': 'user', 'content': TEXT}], tokenize=False, "
               "add_generation_prompt=True)\n```")
        card = model_card(workspace, run_dir, fmt="merged model", source=source,
                          files=[p["name"] for p in _sizes(folder)], how_to_load=how,
                          verification=result["verification"])
        (folder / "README.md").write_text(card, encoding="utf-8")
        phase("saving", 2, 3)
        result["download"] = folder.name
    else:
        scratch = job_dir / ".merged"
        shutil.rmtree(scratch, ignore_errors=True)
        phase("merging", 0, 4)
        merge_run(workspace, run_dir, adapter, scratch, progress=lambda p: phase(p, 0, 4))
        gguf_path = job_dir / f"{stem}-{cfg.quant}.gguf"
        written = write_gguf(scratch, gguf_path, cfg.quant, name=runs.display_name(run_dir),
                             pre=pre_tokenizer(workspace, run_config.get("model", "")),
                             progress=lambda d, t: phase(f"writing GGUF {cfg.quant}: tensor {d} of {t}", 1, 4))
        result["gguf"] = written
        # The run's own tokenizer, not the merged folder's: that one's chat template already holds the run's
        # template, and the Modelfile renders the template through the chat template itself.
        tokenizer = load_tokenizer(str(adapter) if (adapter / "tokenizer_config.json").exists()
                                   else resolve_model(run_config.get("model", ""), workspace))
        stops = stop_strings(tokenizer)
        if cfg.ollama:
            model_name = stem.lower()
            text = ollama_modelfile(gguf_path.name, tokenizer, template, num_ctx=max(2048, run_config.get(
                "max_seq_length", 512) + 256), description=f"{runs.display_name(run_dir)}, exported by Tuning Studio")
            (job_dir / "Modelfile").write_text(text, encoding="utf-8")
            result["ollama_command"] = f"ollama create {model_name} -f Modelfile && ollama run {model_name}"
        phase("verifying", 2, 4)
        result["verification"] = _verify(workspace, cfg, run_config, adapter, phase, lambda texts, prompts:
                                         verify.gguf_answers(gguf_path, prompts, tokens, stops))
        shutil.rmtree(scratch, ignore_errors=True)
        how = (f"llama.cpp: `llama-cli -m {gguf_path.name} --jinja` (the chat template carries the run's prompt)"
               + (f"\n\nOllama: `{result['ollama_command']}` in this folder" if cfg.ollama else ""))
        card = model_card(workspace, run_dir, fmt=f"GGUF {cfg.quant}", source=source,
                          files=[p["name"] for p in _sizes(job_dir)] + ["README.md"], how_to_load=how,
                          verification=result["verification"])
        (job_dir / "README.md").write_text(card, encoding="utf-8")
        phase("done", 3, 4)
        result["download"] = gguf_path.name
    result["files"] = _sizes(job_dir)
    result["finished"] = runs.now_iso()
    runs.write_json(job_dir / EXPORT_FILE, result)
    return result
