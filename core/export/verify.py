"""Does the exported file answer like the run? A second implementation loads the artifact and answers a
few eval prompts greedily; the answers are compared with the studio's own for the run.

  the studio     the run's base + adapter through core.models / core.templates / core.generate, float32
  adapter        plain peft on the plain base model, the exported adapter folder
  merged         plain transformers on the merged folder, the prompt from the folder's own chat template
                 (so the check also proves the template carries the run's prompt)
  gguf           llama.cpp (the llama-cpp-python bindings) when installed, else transformers' GGUF
                 loader (which de-quantizes the weights into a torch model)

Everything is greedy and one prompt at a time, so padding and sampling never explain a difference."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from core.config import GenerationConfig
from core.data import load_dataset
from core.templates import render_prompt

# A prompt's text is cut to this many characters, so every runtime sees the same short prompt quickly.
TEXT_CHARS = 1200


def prompts_for(run_config: dict, n: int) -> list[str]:
    """The first `n` texts of the run's eval file (else its training file), cut to TEXT_CHARS."""
    path = run_config.get("eval_file") or run_config.get("train_file")
    if not path or not Path(path).exists():
        raise FileNotFoundError(f"the run's data file {path} is gone: verification needs a few of its prompts")
    data = load_dataset(path, run_config.get("input_column"), run_config.get("output_column"), require_output=False)
    texts = [str(e.get("input_text") or e.get("prompt") or "") for e in data.examples[:n]]
    return [t[:TEXT_CHARS] for t in texts if t.strip()]


def answer_tokens(run_config: dict) -> int:
    """New tokens per answer: enough for a label and a short sentence, or a one-line summary."""
    return 32 if run_config.get("task") == "classification" else 64


def studio_answers(workspace, run_config: dict, adapter: Path, texts: list[str], device: str = "cpu") -> tuple[list[str], list[str]]:
    """(prompts, answers) as the studio asks the run, in float32 (the merge is float32 too)."""
    import torch

    from core.generate import generate_texts
    from core.models import load_model

    model, tokenizer, _ = load_model(run_config.get("model", ""), workspace, device=device, adapter=adapter,
                                     dtype=torch.float32)
    prompts = [render_prompt(tokenizer, run_config["template"], t) for t in texts]
    cfg = GenerationConfig(max_output_tokens=answer_tokens(run_config), temperature=0.0, batch_size=1)
    return prompts, [a or "" for a in generate_texts(model, tokenizer, prompts, cfg)]


def _greedy(model, tokenizer, prompt: str, max_new_tokens: int) -> str:
    import torch

    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    if tokenizer.bos_token_id is not None and tokenizer("").input_ids[:1] == [tokenizer.bos_token_id] \
            and ids[0, 0].item() != tokenizer.bos_token_id:
        ids = torch.cat([torch.tensor([[tokenizer.bos_token_id]]), ids], dim=1)  # as the tokenizer adds it
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_k=None,
                             top_p=None, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


def adapter_answers(base_location: str, adapter_dir: Path, prompts: list[str], max_new_tokens: int) -> list[str]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    model = AutoModelForCausalLM.from_pretrained(base_location, dtype=torch.float32, use_safetensors=True)
    model = PeftModel.from_pretrained(model, str(adapter_dir)).eval()
    return [_greedy(model, tokenizer, p, max_new_tokens) for p in prompts]


def merged_answers(folder: Path, texts: list[str], max_new_tokens: int) -> tuple[list[str], list[str]]:
    """(prompts from the folder's own chat template, answers) with plain transformers."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, use_safetensors=True).eval()
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False,
                                             add_generation_prompt=True) for t in texts]
    return prompts, [_greedy(model, tokenizer, p, max_new_tokens) for p in prompts]


def gguf_runtime(preference: str = "auto") -> str:
    """`llama.cpp` when its Python bindings are installed (or asked for), else `transformers`."""
    if preference != "auto":
        return preference
    return "llama.cpp" if importlib.util.find_spec("llama_cpp") is not None else "transformers"


def gguf_answers(path: Path, prompts: list[str], max_new_tokens: int, stops: list[str],
                 runtime: str = "auto") -> tuple[str, list[str]]:
    """(the runtime's name, answers) for the studio's prompts from the GGUF file."""
    runtime = gguf_runtime(runtime)
    if runtime == "llama.cpp":
        import llama_cpp

        llm = llama_cpp.Llama(model_path=str(path), n_ctx=2048, n_threads=os.cpu_count() or 1, seed=0,
                              verbose=False)
        answers = []
        for p in prompts:
            out = llm.create_completion(p, max_tokens=max_new_tokens, temperature=0.0, top_k=1,
                                        repeat_penalty=1.0, stop=stops or None)
            answers.append(out["choices"][0]["text"].strip())
        llm.close()
        return f"llama.cpp (llama-cpp-python {llama_cpp.__version__})", answers
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    return "transformers GGUF loader", [_greedy(model, tokenizer, p, max_new_tokens) for p in prompts]


def compare(texts: list[str], studio: list[str], exported: list[str]) -> dict:
    rows = [{"input": t[:200], "studio": a, "export": b, "same": a == b} for t, a, b in zip(texts, studio, exported)]
    same = sum(r["same"] for r in rows)
    return {"prompts": len(rows), "identical": same, "agreement": same / len(rows) if rows else None, "rows": rows}
