"""Classification answers without generation: each label scored by its log-likelihood as the answer to a
prompt, the way lm-evaluation-harness scores multiple choice; the answer is the best-scoring label.

A label's continuation is exactly what a tuned model was taught to write after the prompt
(core.templates.render_answer): the label's tokens, then the end-of-sequence token, the same token
sequences constrained decoding walks (core.generate.label_sequences). Scoring the end token too decides
labels that are prefixes of others ("games" vs "gamesx"): "games" must also *stop* there.

The prompt and every label's continuation run in one forward pass, each label seeing only the prompt and
itself (a 4D attention mask; see _batch_logliks). Prompts of similar length are batched (left padding,
position ids from the mask), so padding does not change a number. The tokens all prompts share (the chat
preamble and the instruction naming the labels) run once per call, not once per row.

Calibration (contextual calibration, Zhao et al. 2021, "Calibrate Before Use"): a model, tuned or not,
leans towards some labels whatever the text (the frequent classes of its training rows, short labels).
That lean is measured by scoring the labels for content-free inputs ("", "N/A", "[MASK]") through the
same template, and a share of it is subtracted from every row's scores before the best label is chosen.
Half strength (DEFAULT_CALIBRATION) was chosen by benchmarks/calibration_sweep.py on validation rows of
the shared training file, over three tuned runs: macro-F1 0.548 → 0.574 on average (0.570 at a quarter,
0.514 at full strength, which over-corrects)."""
from __future__ import annotations

import time
from typing import Callable

from core.config import DEFAULT_CALIBRATION  # noqa: F401 (documented here, set in config)
from core.generate import label_sequences

DEFAULT_BATCH_SIZE = 8
# Most tokens (prompts × the longest of them) one pass holds: a 5,000-token description then runs
# alone instead of padding seven short prompts to its length (a shared eval row that long stalled
# a batch for minutes).
TOKENS_PER_PASS = 2048
CONTENT_FREE_INPUTS = ("", "N/A", "[MASK]")


def score_labels(model, tokenizer, prompts: list[str], labels: list[str], batch_size: int = DEFAULT_BATCH_SIZE,
                 progress: Callable[[int, int], None] | None = None, keep_going: bool = False,
                 stats: dict | None = None, calibration: float = 0.0,
                 content_free: list[str] | None = None, lean: dict[str, float] | None = None) -> list[dict | None]:
    """For each prompt, {"label": the best-scoring label, "loglik": {label: score}}, in order.

    A label's log-likelihood is the *sum* of the log-probabilities of its continuation tokens (label
    tokens + end token), lm-eval's `acc`. Not length-normalised (lm-eval's `acc_norm`): the sum is
    log P(the model answers exactly this label and stops), which is what greedy and constrained decoding
    approximate and what tuning raised; dividing by length favours long labels, a correction meant for
    free-text choices, not for class names. Every per-label value is returned, so a normalised choice
    can be made from them. `progress(done, total)` is called after each batch; with `keep_going`, a
    batch that fails gives None for its rows instead of raising.

    With `calibration` c > 0 and `content_free` prompts (the template rendered for CONTENT_FREE_INPUTS,
    see content_free_prompts), each score is log-likelihood − c × the label's mean log-likelihood for
    those prompts, and "raw_loglik" holds the uncalibrated values. A caller scoring many chunks with one
    model passes that `lean` (label_lean) instead, measured once."""
    import torch

    if not labels:
        raise ValueError("label scoring needs a label set (classification data with labels)")
    labels = list(dict.fromkeys(labels))
    seqs = label_sequences(tokenizer, labels)
    device = next(model.parameters()).device
    ids = tokenizer(prompts).input_ids if prompts else []
    shared = _shared_prefix(ids)
    lengths = [len(row) - shared for row in ids]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])  # similar lengths pad little
    batches: list[list[int]] = []
    for i in order:  # ascending lengths: the row joining a batch is its longest
        if batches and len(batches[-1]) < batch_size and (len(batches[-1]) + 1) * lengths[i] <= TOKENS_PER_PASS:
            batches[-1].append(i)
        else:
            batches.append([i])
    out: list[dict | None] = [None] * len(prompts)
    if calibration and lean is None and content_free:
        lean = label_lean(model, tokenizer, content_free, labels)
    done, t0 = 0, time.perf_counter()
    with torch.inference_mode():
        prefix = _prefix_cache(model, ids[0][:shared], device) if shared else None
    for idx in batches:
        try:
            with torch.inference_mode():
                totals = _batch_logliks(model, [ids[i][shared:] for i in idx], seqs, device, prefix, shared,
                                        tokenizer.pad_token_id or 0)
        except RuntimeError as e:
            if not keep_going:
                raise
            print(f"a batch of {len(idx)} prompts failed: {e}", flush=True)
        else:
            for i, row in zip(idx, totals.tolist()):
                loglik = dict(zip(labels, row))
                out[i] = {"loglik": loglik}
                if calibration and lean:
                    out[i] = {"loglik": {k: v - calibration * lean[k] for k, v in loglik.items()}, "raw_loglik": loglik}
                out[i]["label"] = max(labels, key=out[i]["loglik"].__getitem__)
        done += len(idx)
        if progress:
            progress(done, len(prompts))
    if stats is not None:
        stats.update(seconds=time.perf_counter() - t0, shared_prefix_tokens=shared)
    return out


def content_free_prompts(render: Callable[[str], str]) -> list[str]:
    """The prompts calibration measures the model's lean with: `render` (the evaluation's template applied
    to an input text) for each content-free input."""
    return [render(text) for text in CONTENT_FREE_INPUTS]


def label_lean(model, tokenizer, content_free: list[str], labels: list[str]) -> dict[str, float]:
    """Each label's mean log-likelihood over the content-free prompts: how much the model favours it
    before reading any text."""
    scored = score_labels(model, tokenizer, content_free, labels)
    return {label: sum(s["loglik"][label] for s in scored) / len(scored) for label in dict.fromkeys(labels)}


def _shared_prefix(ids: list[list[int]]) -> int:
    """Tokens every prompt starts with (the chat preamble and the instruction with its label list: 80 of
    the shared classification rows' ~200), less one, so each row keeps its last prompt token, whose
    logits score every label's first token."""
    if len(ids) < 2:
        return 0
    first, n = ids[0], min(len(row) for row in ids) - 1
    for row in ids[1:]:
        while n > 0 and row[:n] != first[:n]:
            n = next((k for k in range(min(n, len(row))) if row[k] != first[k]), n - 1)
    return max(0, n)


def _prefix_cache(model, prefix_ids: list[int], device):
    """The shared prefix's keys and values, computed once per evaluation and copied into each batch."""
    import torch

    return model(input_ids=torch.tensor([prefix_ids], device=device), use_cache=True).past_key_values


def _batch_logliks(model, rows: list[list[int]], seqs: list[list[int]], device, prefix=None, shared: int = 0,
                   pad_id: int = 0):
    """(prompts × labels) tensor of summed continuation log-probabilities, in one forward pass.

    Each row is [left padding][prompt][label 1's fed tokens][label 2's]…: every label's tokens follow
    the prompt at the positions they would have as its answer (they all start where the prompt ends),
    and a 4D mask lets each of them see the prompt and the earlier tokens of its own label only. So the
    prompt runs once and no cache is copied per label (a copy per label cost more than the scoring).
    Left padding gives every row the same layout: the logits needed (the prompt's last position, then
    every fed token) sit at the same indices in each row, and only those go through the LM head.
    With a `prefix` cache (the `shared` first tokens of every prompt, already run), `rows` are the rest of
    each prompt: every query also sees the prefix, and positions start after it."""
    import copy

    import torch

    n_prompts, width = len(rows), max(len(r) for r in rows)
    ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows], dtype=torch.long, device=device)
    pad = torch.tensor([[False] * (width - len(r)) + [True] * len(r) for r in rows], device=device)
    fed = [s[:-1] for s in seqs]  # each continuation but its last token is fed; all of it is scored
    offsets = [0]
    for f in fed:
        offsets.append(offsets[-1] + len(f))
    extra = offsets[-1]
    tail = torch.tensor([t for f in fed for t in f], dtype=torch.long, device=device)
    length = shared + pad.sum(-1, keepdim=True)  # each prompt's own length
    positions = torch.cat([shared + (pad.cumsum(-1) - 1).clamp(min=0),
                           length + torch.tensor([k for f in fed for k in range(len(f))], device=device)], dim=1)
    # Who sees whom: prompt tokens causally (never the padding); label tokens the whole prompt and
    # their own label's earlier tokens; padding only itself (a row with no key at all would give NaN).
    total = width + extra
    see = torch.zeros((n_prompts, total, total), dtype=torch.bool, device=device)
    causal = torch.ones((width, width), dtype=torch.bool, device=device).tril()
    see[:, :width, :width] = causal & pad[:, None, :]
    label_of = torch.tensor([j for j, f in enumerate(fed) for _ in f], device=device)
    own = (label_of[:, None] == label_of[None, :]) & torch.ones((extra, extra), dtype=torch.bool, device=device).tril()
    see[:, width:, :width] = pad[:, None, :]
    see[:, width:, width:] = own
    diag = torch.arange(total, device=device)
    see[:, diag, diag] |= torch.cat([~pad, torch.zeros((n_prompts, extra), dtype=torch.bool, device=device)], 1)
    cache = None
    if prefix is not None:  # everyone sees the prefix (padding too: harmless, its outputs are never read)
        see = torch.cat([torch.ones((n_prompts, total, shared), dtype=torch.bool, device=device), see], dim=2)
        cache = copy.deepcopy(prefix)  # the forward pass appends to it
        cache.batch_repeat_interleave(n_prompts)
    dtype = next(model.parameters()).dtype
    mask = torch.zeros(see.shape, dtype=dtype, device=device).masked_fill(~see, torch.finfo(dtype).min)[:, None]
    keep = torch.arange(width - 1, total, device=device)  # the prompt's last position, then every fed token
    out = model(input_ids=torch.cat([ids, tail.expand(n_prompts, -1)], dim=1), attention_mask=mask,
                position_ids=positions, logits_to_keep=keep, past_key_values=cache, use_cache=cache is not None)
    logp = out.logits.float().log_softmax(-1)  # (B, 1 + extra, V)
    totals = torch.zeros((n_prompts, len(seqs)), device=device)
    for j, s in enumerate(seqs):
        # Token t of the continuation is predicted at index offsets[j] + t (index 0: the prompt's end).
        at = [0] + [1 + offsets[j] + t for t in range(len(s) - 1)]
        totals[:, j] = logp[:, at, :].gather(-1, torch.tensor(s, device=device).expand(n_prompts, -1)[..., None]
                                             ).squeeze(-1).sum(-1)
    return totals


def top_two(scored: dict | None) -> dict:
    """The small record a prediction row keeps: the chosen label's score, the runner-up label and its
    score (their difference is how sure the model was; calibrated scores when calibration was on)."""
    if not scored:
        return {}
    ranked = sorted(scored["loglik"].items(), key=lambda kv: kv[1], reverse=True)
    out = {"loglik": round(ranked[0][1], 4)}
    if len(ranked) > 1:
        out.update(runner_up=ranked[1][0], runner_up_loglik=round(ranked[1][1], 4))
    return out
