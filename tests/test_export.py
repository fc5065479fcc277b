"""Export on the tiny model: the merged weights are base + the scaled LoRA product, the merged model's logits
are the adapter-on-base logits, its chat template asks the way the run was taught, and GGUF files read back
with the expected tensors, shapes, types and metadata (the chat template included) — by the `gguf` reader
and by transformers' GGUF loader, which undoes llama.cpp's Q/K ordering."""
import json
import zipfile

import pytest
import torch
from conftest import ASSETS, write_jsonl
from safetensors.torch import load_file
from test_train import tiny_config

from core import jobs, runs
from core.cli import main
from core.export import verify
from core.export.chat_template import ollama_modelfile, wrapped_chat_template
from core.export.config import ExportConfig
from core.export.gguf_file import read_back
from core.export.listing import list_exports, verification_line
from core.models import load_tokenizer
from core.names import EXPORTS_DIR
from core.templates import render_prompt
from core.train import run_tuning
from core.worker import run_job

TEXT = "A puzzle game with falling blocks and a high-score table."


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, tiny_model_dir):
    """(workspace, run_dir): a tiny classification run tuned for 4 steps, with a checkpoint at step 2."""
    ws = tmp_path_factory.mktemp("export-ws")
    rows = [json.loads(x) for x in (ASSETS / "classification_train.jsonl").read_text().splitlines()]
    keep = [r for r in rows if r["output_text"] in ("games", "math")][:24]
    train, ev = write_jsonl(ws / "train.jsonl", keep[:16]), write_jsonl(ws / "eval.jsonl", keep[16:24])
    run_dir = runs.create_run(ws, tiny_config(tiny_model_dir, train, ev, steps=4, eval_every=2, name="tiny games"))
    run_tuning(run_dir)
    assert runs.read_status(run_dir)["state"] == "succeeded"
    return ws, run_dir


def export(ws, run_dir, **kw):
    cfg = ExportConfig(run_id=run_dir.name, device="cpu", **kw)
    job_dir = jobs.create_export(ws, cfg)
    run_job(job_dir)  # as the worker runs it
    status = runs.read_status(job_dir)
    assert status["state"] == "succeeded", status
    return job_dir, runs.read_json(job_dir / "export.json")


def test_merged_weights_are_base_plus_scaled_lora_product_and_logits_match(tuned, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ws, run_dir = tuned
    job_dir, result = export(ws, run_dir, format="merged", verify_prompts=2)
    assert job_dir == run_dir / EXPORTS_DIR / "merged"
    folder = job_dir / result["download"]
    merged = load_file(folder / "model.safetensors")
    base = load_file(tiny_model_dir / "model.safetensors")
    lora = load_file(run_dir / "adapter" / "adapter_model.safetensors")
    cfg = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
    scale = cfg["lora_alpha"] / cfg["r"]
    moved = 0
    for key, weight in base.items():
        a_key = next((k for k in lora if k.endswith(key.replace(".weight", ".lora_A.weight"))), None)
        if a_key is None:
            assert torch.equal(merged[key], weight), key  # not adapted: unchanged
            continue
        delta = scale * lora[a_key.replace("lora_A", "lora_B")] @ lora[a_key]
        torch.testing.assert_close(merged[key], weight + delta, rtol=0, atol=1e-6)
        moved += int(delta.abs().sum() > 0)
    assert moved > 0  # the adapter trained, so the merge changed weights

    tok = load_tokenizer(str(run_dir / "adapter"))
    ids = tok(render_prompt(tok, runs.read_json(run_dir / "config.json")["template"], TEXT), return_tensors="pt")
    plain = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    on_base = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32),
                                        str(run_dir / "adapter")).eval()
    with torch.inference_mode():
        torch.testing.assert_close(plain(**ids).logits, on_base(**ids).logits, rtol=1e-4, atol=1e-5)

    # The folder's own chat template asks exactly as the studio does, and the job checked it too.
    merged_tok = load_tokenizer(str(folder))
    asked = merged_tok.apply_chat_template([{"role": "user", "content": TEXT}], tokenize=False, add_generation_prompt=True)
    assert asked == render_prompt(tok, runs.read_json(run_dir / "config.json")["template"], TEXT)
    assert result["chat_template_matches"] is True
    check = result["verification"]
    assert check["prompts"] == 2 and check["runtime"] == "transformers on the merged folder"
    assert check["identical"] == sum(r["same"] for r in check["rows"])
    card = (folder / "README.md").read_text()
    assert "tiny games" in card and "Classify the text" in card and "| Steps | 4 of 4" in card


def test_chat_template_keeps_quotes_braces_and_newlines(tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    template = 'Say "{{x}}" {% raw %} \\ ü 🎲\n\nText: {input_text}\n-- end \'q\''
    tok.chat_template = wrapped_chat_template(load_tokenizer(str(tiny_model_dir)).chat_template, template)
    asked = tok.apply_chat_template([{"role": "user", "content": TEXT}], tokenize=False, add_generation_prompt=True)
    assert asked == render_prompt(load_tokenizer(str(tiny_model_dir)), template, TEXT)


def test_gguf_export_reads_back_with_names_shapes_types_and_chat_template(tuned, tiny_model_dir):
    ws, run_dir = tuned
    job_dir, result = export(ws, run_dir, format="gguf", quant="q8_0", ollama=True, verify_prompts=2)
    gguf = job_dir / result["download"]
    assert gguf.name == "tiny-games-q8_0.gguf" and not (job_dir / ".merged").exists()
    back = read_back(gguf)
    meta, tensors = back["metadata"], back["tensors"]
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert meta["general.architecture"] == "llama" and meta["llama.block_count"] == 2
    assert meta["llama.embedding_length"] == 32 and meta["llama.attention.head_count_kv"] == 2
    assert meta["general.file_type"] == 7 and meta["tokenizer.ggml.model"] == "gpt2"
    assert meta["tokenizer.ggml.tokens"] == config["vocab_size"]
    assert "Classify the text into one of these categories: games, math" in meta["tokenizer.chat_template"]
    assert tensors["token_embd.weight"] == {"shape": [32, config["vocab_size"]], "type": "Q8_0"}
    assert tensors["blk.1.attn_k.weight"] == {"shape": [32, 16], "type": "Q8_0"}  # 2 kv heads × 8
    assert tensors["blk.0.ffn_down.weight"]["shape"] == [64, 32]
    assert tensors["output_norm.weight"] == {"shape": [32], "type": "F32"}
    assert "output.weight" not in tensors  # tied embeddings: llama.cpp reuses token_embd
    assert len(tensors) == 2 + 2 * 9

    modelfile = (job_dir / "Modelfile").read_text()
    assert f"FROM ./{gguf.name}" in modelfile and "{{ .Prompt }}" in modelfile
    assert modelfile.count("Classify the text") == 1 and 'PARAMETER stop "<|im_end|>"' in modelfile
    tok = load_tokenizer(str(run_dir / "adapter"))
    template = runs.read_json(run_dir / "config.json")["template"]
    studio_prompt = render_prompt(tok, template, "{{ .Prompt }}")  # Ollama fills in the user's text there
    assert f'TEMPLATE """{studio_prompt}"""' in modelfile
    assert result["ollama_command"].startswith("ollama create tiny-games -f Modelfile")
    assert result["verification"]["prompts"] == 2
    listed = list_exports(run_dir)
    assert [i["label"] for i in listed if i["label"] == "gguf-q8_0"] and listed[0]["bytes"] > gguf.stat().st_size
    assert verification_line(result).startswith(("verified: 2/2", "checked: "))


def test_gguf_f32_loads_back_in_transformers_with_the_merged_weights(tuned):
    from transformers import AutoModelForCausalLM

    ws, run_dir = tuned
    merged_dir, merged = export(ws, run_dir, format="merged", verify_prompts=0)
    job_dir, result = export(ws, run_dir, format="gguf", quant="f32", verify_prompts=0)
    assert result["verification"] is None
    gguf = job_dir / result["download"]
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    expected = load_file(merged_dir / merged["download"] / "model.safetensors")
    got = model.state_dict()
    for key in ("model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
                "model.layers.0.mlp.down_proj.weight", "model.norm.weight"):
        assert torch.equal(got[key], expected[key]), key  # Q/K re-ordered for llama.cpp and back, exactly
    prompts = [render_prompt(load_tokenizer(str(run_dir / "adapter")),
                             runs.read_json(run_dir / "config.json")["template"], TEXT)]
    name, answers = verify.gguf_answers(gguf, prompts, 8, [], runtime="transformers")
    assert name == "transformers GGUF loader" and len(answers) == 1


def test_adapter_export_is_a_zip_with_a_model_card_and_checkpoints_export_too(tuned):
    ws, run_dir = tuned
    job_dir, result = export(ws, run_dir, format="adapter", checkpoint=2, verify_prompts=1)
    assert job_dir.name == "adapter-step2" and result["checkpoint"] == 2
    with zipfile.ZipFile(job_dir / result["download"]) as z:
        names = set(z.namelist())
    folder = "tiny-games-step2-adapter"
    assert {f"{folder}/adapter_config.json", f"{folder}/adapter_model.safetensors", f"{folder}/README.md"} <= names
    assert not any("optimizer" in n for n in names)
    exported = load_file(job_dir / folder / "adapter_model.safetensors")
    source = load_file(run_dir / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors")
    assert all(torch.equal(exported[k], source[k]) for k in source)
    assert result["verification"]["identical"] == 1  # the same adapter through plain peft answers the same
    card = (job_dir / folder / "README.md").read_text()
    assert "checkpoint step 2" in card and "| LoRA | rank 4, alpha 8 |" in card


def test_export_refuses_what_cannot_work(tuned):
    ws, run_dir = tuned
    with pytest.raises(ValueError, match="ollama"):
        ExportConfig(run_id=run_dir.name, format="merged", ollama=True)
    job_dir = jobs.create_export(ws, ExportConfig(run_id=run_dir.name, format="adapter", checkpoint=3, device="cpu"))
    with pytest.raises(Exception, match="no complete checkpoint at step 3; it has 2, 4"):
        run_job(job_dir)
    assert runs.read_status(job_dir)["state"] == "failed"
    assert main(["--workspace", str(ws), "export", run_dir.name, "--format", "merged", "--quant", "q8_0"]) == 2
    assert main(["--workspace", str(ws), "export", "no-such-run"]) == 2


def test_ollama_modelfile_escapes_go_template_braces(tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    text = ollama_modelfile("m.gguf", tok, "Fill {{this}}: {input_text}", 2048, "demo")
    assert '{{ "{{" }}this}}: {{ .Prompt }}' in text and "PARAMETER num_ctx 2048" in text
