"""Batched generation with the reference workflow's knobs (max_output_tokens, temperature, top_k,
top_p, stop_sequences). Prompts are full rendered strings from core.templates.render_prompt.

The one place free text is generated in batches: with vLLM installed and a CUDA GPU, an inference model's
batch goes to vLLM (core.vllm_engine) with the same prompts and greedy answers; otherwise, and for
constrained decoding, transformers' generate() answers."""
from __future__ import annotations

import time
from typing import Callable

from core.config import GenerationConfig


def cut_at_stop(text: str, stop_sequences: list[str]) -> str:
    cut = len(text)
    for s in stop_sequences:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


def label_sequences(tokenizer, labels: list[str]) -> list[list[int]]:
    """Token ids of each label as an answer (label, then end of sequence: what core.templates.render_answer
    teaches), for constrained decoding and label scoring (core.label_scoring)."""
    end = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    return [tokenizer(label, add_special_tokens=False).input_ids + end for label in labels]


def _only(sequences: list[list[int]], prompt_len: int, fallback: int):
    """prefix_allowed_tokens_fn for generate(): the next token must continue one of `sequences`."""
    def allowed(batch_id, input_ids):
        done = input_ids[prompt_len:].tolist()
        nxt = {s[len(done)] for s in sequences if len(s) > len(done) and s[:len(done)] == done}
        return sorted(nxt) or [fallback]
    return allowed


def _generate_kwargs(cfg: GenerationConfig, tokenizer) -> dict:
    """model.generate() arguments for the knobs (seeding torch when sampling), shared by the batched and
    the streaming paths so both answer alike."""
    import torch

    kwargs = dict(max_new_tokens=cfg.max_output_tokens, do_sample=cfg.temperature > 0,
                  pad_token_id=tokenizer.pad_token_id)
    if cfg.temperature > 0:
        kwargs.update(temperature=cfg.temperature, top_k=cfg.top_k or None, top_p=cfg.top_p)
        torch.manual_seed(cfg.seed)
    else:  # silence sampling defaults some generation_config.json files carry
        kwargs.update(temperature=None, top_k=None, top_p=None)
    if cfg.stop_sequences:  # generation ends there; the text is cut there too (cut_at_stop)
        kwargs.update(stop_strings=cfg.stop_sequences, tokenizer=tokenizer)
    return kwargs


def generate_texts(model, tokenizer, prompts: list[str], cfg: GenerationConfig | None = None,
                   progress: Callable[[int, int], None] | None = None, stats: dict | None = None,
                   only: list[list[int]] | None = None, keep_going: bool = False) -> list[str | None]:
    """Answers for `prompts`, in order. `progress(done, total)` is called after each batch; `stats`
    (if given) receives new_tokens and seconds for throughput figures. `only` restricts answers to
    these token sequences (constrained classification: never an answer outside the label set).
    With `keep_going`, a batch that fails (e.g. out of memory on long prompts) gives None for its rows
    instead of raising, so one bad batch never sinks a whole evaluation."""
    import torch

    from core import vllm_engine

    cfg = cfg or GenerationConfig()
    llm = vllm_engine.engine_for(model, len(prompts), only)
    if llm is not None:
        try:
            return vllm_engine.generate(llm, model, tokenizer, prompts, cfg, progress=progress, stats=stats)
        except Exception as e:  # whatever vLLM raised: the transformers path below gives the same answers
            if not keep_going:
                raise
            print(f"vLLM failed ({type(e).__name__}: {e}); answering with transformers", flush=True)
    device = next(model.parameters()).device
    tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
    kwargs = _generate_kwargs(cfg, tokenizer)
    # Batch prompts of similar length together: left padding to the longest prompt of a batch is
    # compute spent on nothing. Answers are put back in the caller's order at the end.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    ordered = [prompts[i] for i in order]
    out: list[str | None] = []
    new_tokens, t0 = 0, time.perf_counter()
    for i in range(0, len(ordered), cfg.batch_size):
        batch = ordered[i:i + cfg.batch_size]
        enc = tokenizer(batch, return_tensors="pt", padding=True).to(device)
        extra = {}
        if only:
            extra["prefix_allowed_tokens_fn"] = _only(only, enc["input_ids"].shape[1], tokenizer.eos_token_id)
        try:
            with torch.inference_mode():
                ids = model.generate(**enc, **kwargs, **extra)
        except RuntimeError as e:
            if not keep_going:
                raise
            print(f"a batch of {len(batch)} prompts failed: {e}", flush=True)
            out.extend([None] * len(batch))
            if progress:
                progress(len(out), len(prompts))
            continue
        gen = ids[:, enc["input_ids"].shape[1]:]
        for row in gen:
            keep = row[row != tokenizer.pad_token_id] if tokenizer.pad_token_id is not None else row
            new_tokens += int(keep.numel())
            text = tokenizer.decode(keep, skip_special_tokens=True)
            out.append(cut_at_stop(text, cfg.stop_sequences).strip())
        if progress:
            progress(len(out), len(prompts))
    if stats is not None:
        stats.update(new_tokens=new_tokens, seconds=time.perf_counter() - t0, engine="transformers")
    answers: list[str | None] = [None] * len(prompts)
    for i, text in zip(order, out):
        answers[i] = text
    return answers


def stream_text(model, tokenizer, prompt: str, cfg: GenerationConfig | None = None):
    """Yield the answer to one prompt piece by piece as it is generated (for live panes), with the same
    knobs as generate_texts; stop sequences end the stream. The last item is a dict of statistics."""
    import threading

    import torch
    from transformers import TextIteratorStreamer

    cfg = cfg or GenerationConfig()
    device = next(model.parameters()).device
    enc = tokenizer([prompt], return_tensors="pt").to(device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    kwargs = dict(**enc, streamer=streamer, **_generate_kwargs(cfg, tokenizer))
    result = {}

    def run():
        with torch.inference_mode():
            result["ids"] = model.generate(**kwargs)

    t0 = time.perf_counter()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    text, shown, first = "", 0, None
    for piece in streamer:
        first = first or time.perf_counter()
        full = text + piece
        text = cut_at_stop(full, cfg.stop_sequences)
        if len(text) > shown:
            yield text[shown:]
            shown = len(text)
        if len(text) < len(full):
            break  # a stop sequence appeared: what came before it is the answer
    worker.join()
    ids = result.get("ids")
    new = int((ids[0, enc["input_ids"].shape[1]:] != tokenizer.pad_token_id).sum()) if ids is not None else 0
    seconds = time.perf_counter() - t0
    yield {"text": text.strip(), "new_tokens": new, "seconds": seconds,
           "first_token_s": (first - t0) if first else None, "tokens_per_s": new / seconds if seconds else 0.0}
