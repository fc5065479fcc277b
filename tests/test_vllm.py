"""Batch generation on vLLM (core.vllm_engine). Without vLLM or without CUDA, generation stays on
transformers with the same answers (tested here on the tiny model); with both (`pip install -e .[vllm]`
on a CUDA machine), vLLM gives the greedy answers of the transformers path on the bundled model, for the
base model and for a LoRA adapter, and the tokens/s of both are printed."""
import pytest
import torch

from core import vllm_engine
from core.config import GenerationConfig
from core.generate import generate_texts
from core.models import load_model
from core.templates import render_prompt

needs_vllm_and_cuda = pytest.mark.skipif(not (vllm_engine.installed() and torch.cuda.is_available()),
                                         reason="vLLM answers on CUDA only: install the vllm extra on a GPU machine")

QUESTIONS = ["Name a prime number.", "What is the capital of France?", "Write one word about the sea.",
             "Say hello in Spanish.", "What colour is the sky?", "Count from one to five.",
             "Name a fruit that is yellow.", "What is two plus two?"]


def test_without_vllm_or_cuda_generation_stays_on_transformers(workspace, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(vllm_engine, "MIN_PROMPTS", 1)
    model, tok, _ = load_model(str(tiny_model_dir), workspace, "cpu")
    prompts = [render_prompt(tok, "{input_text}", q) for q in QUESTIONS[:3]]
    assert vllm_engine.engine_for(model, len(prompts)) is None  # a CPU model: no engine is even looked for
    stats = {}
    answers = generate_texts(model, tok, prompts, GenerationConfig(max_output_tokens=6, batch_size=3), stats=stats)
    assert stats["engine"] == "transformers" and len(answers) == 3
    monkeypatch.setenv("STUDIO_VLLM", "0")
    assert not vllm_engine.available()  # the switch that turns it off everywhere


def test_which_models_vllm_may_answer_for(workspace, tiny_model_dir, tmp_path):
    """What engine_for decides from, on the CPU: the base folder, the adapter on or off, and a model in
    training (its LoRA weights still learn) told apart from one loaded for answering."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    training = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                              LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    assert vllm_engine.in_training(training)
    training.save_pretrained(tmp_path / "adapter")
    tuned, _, _ = load_model(str(tiny_model_dir), workspace, "cpu", adapter=tmp_path / "adapter")
    base, _, _ = load_model(str(tiny_model_dir), workspace, "cpu")
    assert not vllm_engine.in_training(tuned) and not vllm_engine.in_training(base)
    assert vllm_engine.base_location(tuned) == vllm_engine.base_location(base) == str(tiny_model_dir)
    assert vllm_engine.adapter_active(tuned) and not vllm_engine.adapter_active(base)
    with tuned.disable_adapter():
        assert not vllm_engine.adapter_active(tuned)  # the base pane of an evaluation: no LoRARequest
    assert vllm_engine.adapter_active(tuned) and vllm_engine._max_lora_rank(tuned) == 8  # rank 4 → vLLM's 8


def answers_both_ways(model, tok, prompts, cfg):
    """(transformers answers, vLLM answers, their tokens/s), the same prompts and settings."""
    hf_stats, vllm_stats = {}, {}
    with pytest.MonkeyPatch.context() as m:
        m.setenv("STUDIO_VLLM", "0")
        hf = generate_texts(model, tok, prompts, cfg, stats=hf_stats)
    llm = vllm_engine.engine(vllm_engine.base_location(model), str(model.dtype).removeprefix("torch."),
                             vllm_engine._max_lora_rank(model))
    fast = vllm_engine.generate(llm, model, tok, prompts, cfg, stats=vllm_stats)
    speed = {name: s["new_tokens"] / s["seconds"] for name, s in (("transformers", hf_stats), ("vllm", vllm_stats))}
    return hf, fast, speed


def same_enough(a: list[str], b: list[str]) -> bool:
    """Greedy answers agree; bf16 kernels differ between the engines, so a near-tie may flip one answer."""
    return sum(x == y for x, y in zip(a, b)) >= len(a) - 1


@needs_vllm_and_cuda
def test_vllm_gives_the_greedy_answers_of_transformers_for_the_base_model(workspace, bundled_dir):
    model, tok, _ = load_model(str(bundled_dir), workspace, "cuda")
    prompts = [render_prompt(tok, "{input_text}", q) for q in QUESTIONS]
    hf, fast, speed = answers_both_ways(model, tok, prompts, GenerationConfig(max_output_tokens=24, batch_size=8))
    print(f"\nbase model, {len(prompts)} prompts: {speed['transformers']:.0f} tokens/s with transformers, "
          f"{speed['vllm']:.0f} tokens/s with vLLM")
    assert same_enough(hf, fast), list(zip(hf, fast))


@needs_vllm_and_cuda
def test_vllm_answers_with_the_lora_adapter_on_and_off(workspace, bundled_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)  # an adapter that changes answers: random A and B (not peft's zero B)
    adapted = get_peft_model(AutoModelForCausalLM.from_pretrained(bundled_dir),
                             LoraConfig(r=8, lora_alpha=32, target_modules="all-linear", init_lora_weights=False))
    adapted.save_pretrained(tmp_path / "adapter")
    model, tok, _ = load_model(str(bundled_dir), workspace, "cuda", adapter=tmp_path / "adapter")
    prompts = [render_prompt(tok, "{input_text}", q) for q in QUESTIONS]
    cfg = GenerationConfig(max_output_tokens=24, batch_size=8)
    hf, fast, speed = answers_both_ways(model, tok, prompts, cfg)
    print(f"\nLoRA adapter, {len(prompts)} prompts: {speed['transformers']:.0f} tokens/s with transformers, "
          f"{speed['vllm']:.0f} tokens/s with vLLM")
    assert same_enough(hf, fast), list(zip(hf, fast))
    with model.disable_adapter():
        base_hf, base_fast, _ = answers_both_ways(model, tok, prompts, cfg)
    assert same_enough(base_hf, base_fast), list(zip(base_hf, base_fast))
    assert base_fast != fast  # the adapter really was applied by vLLM, and really left out without it


@needs_vllm_and_cuda
def test_generate_texts_sends_a_batch_of_an_inference_model_to_vllm(workspace, bundled_dir, monkeypatch):
    monkeypatch.setattr(vllm_engine, "MIN_PROMPTS", 4)
    model, tok, _ = load_model(str(bundled_dir), workspace, "cuda")
    prompts = [render_prompt(tok, "{input_text}", q) for q in QUESTIONS]
    stats, seen = {}, []
    generate_texts(model, tok, prompts, GenerationConfig(max_output_tokens=8), stats=stats,
                   progress=lambda done, total: seen.append((done, total)))
    assert stats["engine"] == "vllm" and seen[-1] == (len(prompts), len(prompts))
    stats = {}
    generate_texts(model, tok, prompts[:2], GenerationConfig(max_output_tokens=8), stats=stats)
    assert stats["engine"] == "transformers"  # too few prompts to be worth an engine
