"""Classification answers without generation: each label scored by its log-likelihood as the answer to a
prompt, the way lm-evaluation-harness scores multiple choice; the answer is the best-scoring label.

A label's continuation is exactly what a tuned model was taught to write after the prompt
(core.templates.render_answer): the label's tokens, then the end-of-sequence token, the same token
sequences constrained decoding walks (core.generate.label_sequences). Scoring the end token too decides
labels that are prefixes of others ("games" vs "gamesx"): "games" must also *stop* there.

The prompt runs once, with the KV cache kept; all label continuations then run together against that
cache, repeated over the labels. Prompts of similar length are batched (left padding, attention mask,
position ids from the mask), so padding does not change a number."""
from __future__ import annotations

import time
from typing import Callable

from core.generate import label_sequences

# Rows (prompt × label) in one continuation pass: each holds a copy of its prompt's KV cache, so this
# bounds memory (the bundled 135M model in float32: ~46 kB per cached token, a 300-token prompt times
# 64 rows ≈ 0.9 GB). With 17 labels, 3 prompts share a pass; with 2 labels, up to `batch_size`.
MAX_ROWS_PER_PASS = 64
DEFAULT_BATCH_SIZE = 8


def score_labels(model, tokenizer, prompts: list[str], labels: list[str], batch_size: int = DEFAULT_BATCH_SIZE,
                 progress: Callable[[int, int], None] | None = None, keep_going: bool = False,
                 stats: dict | None = None) -> list[dict | None]:
    """For each prompt, {"label": the best-scoring label, "loglik": {label: log-likelihood}}, in order.

    A label's log-likelihood is the *sum* of the log-probabilities of its continuation tokens (label
    tokens + end token), lm-eval's `acc`. Not length-normalised (lm-eval's `acc_norm`): the sum is
    log P(the model answers exactly this label and stops), which is what greedy and constrained decoding
    approximate and what tuning raised; dividing by length favours long labels, a correction meant for
    free-text choices, not for class names. Every per-label value is returned, so a normalised choice
    can be made from them. `progress(done, total)` is called after each batch; with `keep_going`, a
    batch that fails gives None for its rows instead of raising."""
    import torch

    if not labels:
        raise ValueError("label scoring needs a label set (classification data with labels)")
    labels = list(dict.fromkeys(labels))
    seqs = label_sequences(tokenizer, labels)
    device = next(model.parameters()).device
    tokenizer.padding_side = "left"
    per_batch = max(1, min(batch_size, MAX_ROWS_PER_PASS // len(labels)))
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths pad little
    out: list[dict | None] = [None] * len(prompts)
    done, t0 = 0, time.perf_counter()
    for start in range(0, len(order), per_batch):
        idx = order[start:start + per_batch]
        try:
            with torch.inference_mode():
                totals = _batch_logliks(model, tokenizer, [prompts[i] for i in idx], seqs, device)
        except RuntimeError as e:
            if not keep_going:
                raise
            print(f"a batch of {len(idx)} prompts failed: {e}", flush=True)
        else:
            for i, row in zip(idx, totals.tolist()):
                loglik = dict(zip(labels, row))
                out[i] = {"label": max(labels, key=loglik.__getitem__), "loglik": loglik}
        done += len(idx)
        if progress:
            progress(done, len(prompts))
    if stats is not None:
        stats.update(seconds=time.perf_counter() - t0)
    return out


def _batch_logliks(model, tokenizer, prompts: list[str], seqs: list[list[int]], device):
    """(prompts × labels) tensor of summed continuation log-probabilities."""
    import torch

    enc = tokenizer(prompts, return_tensors="pt", padding=True).to(device)
    mask = enc["attention_mask"]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    # The prompt once: its cache, and only the last position's logits (the first continuation token).
    first = model(input_ids=enc["input_ids"], attention_mask=mask, position_ids=positions, use_cache=True,
                  logits_to_keep=1)
    logp = first.logits[:, -1].float().log_softmax(-1)  # (B, V)
    heads = torch.tensor([s[0] for s in seqs], device=device)
    totals = logp[:, heads]  # (B, L): log P(first token of each label)
    width = max(len(s) for s in seqs) - 1  # fed tokens: each continuation but its last
    if width == 0:
        return totals
    n_prompts, n_labels = len(prompts), len(seqs)
    fed = torch.full((n_labels, width), tokenizer.pad_token_id or 0, dtype=torch.long, device=device)
    target = torch.zeros((n_labels, width), dtype=torch.long, device=device)
    real = torch.zeros((n_labels, width), dtype=torch.long, device=device)
    for j, s in enumerate(seqs):
        n = len(s) - 1
        fed[j, :n] = torch.tensor(s[:-1], device=device)
        target[j, :n] = torch.tensor(s[1:], device=device)
        real[j, :n] = 1
    cache = first.past_key_values
    cache.batch_repeat_interleave(n_labels)  # row b * L + j: prompt b, label j
    # Continuation positions follow each prompt's own length (left padding does not count).
    start = mask.sum(-1).repeat_interleave(n_labels)[:, None]
    rows_mask = torch.cat([mask.repeat_interleave(n_labels, 0), real.repeat(n_prompts, 1)], dim=1)
    # Right padding inside the continuation is harmless: a causal model never looks ahead, and the
    # padded positions' scores are dropped below.
    rest = model(input_ids=fed.repeat(n_prompts, 1), attention_mask=rows_mask,
                 position_ids=start + torch.arange(width, device=device), past_key_values=cache, use_cache=True)
    lp = rest.logits.float().log_softmax(-1).gather(-1, target.repeat(n_prompts, 1)[..., None])[..., 0]
    return totals + (lp * real.repeat(n_prompts, 1)).sum(-1).view(n_prompts, n_labels)


def top_two(scored: dict | None) -> dict:
    """The small record a prediction row keeps: the chosen label's log-likelihood, the runner-up label
    and its log-likelihood (their difference is how sure the model was)."""
    if not scored:
        return {}
    ranked = sorted(scored["loglik"].items(), key=lambda kv: kv[1], reverse=True)
    out = {"loglik": round(ranked[0][1], 4)}
    if len(ranked) > 1:
        out.update(runner_up=ranked[1][0], runner_up_loglik=round(ranked[1][1], 4))
    return out
