import pytest
from rouge_score import rouge_scorer
from sklearn.metrics import f1_score

from core.metrics import OFF_LABEL, classification_metrics, parse_label, summarization_metrics, task_metrics


def test_an_answer_is_a_label_only_when_it_is_that_label():
    labels = ["games", "math", "web"]
    assert parse_label("Games.", labels) == "games"
    assert parse_label("The category is math", labels) is None  # a sentence naming a label is not that label
    assert parse_label("The text is classified as games", ["text", "games"]) is None
    assert parse_label("  **Math**  \nbecause it adds numbers", labels) == "math"  # the answer line is the label
    assert parse_label("maths", labels, synonyms={"maths": "math"}) == "math"
    assert parse_label("webserver", labels) is None  # not a whole word
    assert parse_label("", labels) is None


def test_classification_metrics_equal_hand_computed_values():
    y_true = ["a", "a", "a", "b", "b", "c"]
    y_pred = ["a", "a", "b", "b", None, "c"]  # one off-label answer
    m = classification_metrics(y_true, y_pred, ["a", "b", "c"])
    per = {r["label"]: r for r in m["per_label"]}
    # a: tp=2 fp=0 fn=1 -> p=1, r=2/3, f1=0.8 ; b: tp=1 fp=1 fn=1 -> 0.5/0.5/0.5 ; c: 1/1/1
    assert per["a"]["precision"] == pytest.approx(1.0)
    assert per["a"]["recall"] == pytest.approx(2 / 3)
    assert per["a"]["f1_score"] == pytest.approx(0.8)
    assert per["b"]["f1_score"] == pytest.approx(0.5)
    assert per["c"]["f1_score"] == pytest.approx(1.0)
    assert per["a"]["support"] == 3
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 1.0) / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # micro over the label set: tp=4, fp=1 (b), fn=2 -> p=4/5, r=4/6, f1=8/11
    assert m["micro_f1"] == pytest.approx(8 / 11)
    assert m["off_label_count"] == 1
    assert m["confusion_matrix"]["labels"][-1] == OFF_LABEL
    assert m["confusion_matrix"]["matrix"][1] == [0, 1, 0, 1]  # b: one right, one off-label
    # and the same as scikit-learn computes directly
    pred = [p or OFF_LABEL for p in y_pred]
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, pred, labels=["a", "b", "c"], average="macro"))


def test_absent_unpredicted_labels_do_not_drag_the_macro_average():
    with_extra = classification_metrics(["a", "b"], ["a", "b"], ["a", "b", "never"])
    assert with_extra["macro_f1"] == 1.0
    assert [r["label"] for r in with_extra["per_label"]] == ["a", "b", "never"]  # still listed
    # ...but a label that was answered wrongly does count
    assert classification_metrics(["a", "a"], ["a", "never"], ["a", "never"])["macro_f1"] == pytest.approx((2 / 3) / 2)


def test_summarization_metrics_match_rouge_score_and_hand_values():
    refs = ["the cat sat on the mat", "a quick brown fox"]
    preds = ["the cat sat", "a quick brown fox"]
    m = summarization_metrics(refs, preds)
    # row 1: 3 of 3 predicted unigrams match, 3 of 6 reference -> P=1, R=0.5 ; row 2 perfect
    assert m["rouge1_precision"] == pytest.approx(1.0)
    assert m["rouge1_recall"] == pytest.approx((0.5 + 1.0) / 2)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    expected = sum(scorer.score(r, p)["rougeL"].fmeasure for r, p in zip(refs, preds)) / 2
    assert m["rougeL_f1"] == pytest.approx(expected)


def test_failed_rows_are_counted_not_scored():
    m = task_metrics("classification", ["a", "b", "a"], ["a", None, "a"], ["a", "b"])
    assert m["evaluation_status"] == {"num_successful_rows": 2, "num_total_rows": 3}
    assert m["accuracy"] == 1.0


def test_question_answering_exact_match_and_token_f1_by_hand():
    from core.metrics import qa_metrics

    m = qa_metrics(["The Eiffel Tower", "Paris France"], ["eiffel tower!", "Paris"])
    # row 1: normalised equal -> EM 1, F1 1 ; row 2: EM 0, P=1/1, R=1/2 -> F1 2/3
    assert m["exact_match"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx((1 + 2 / 3) / 2)


def test_text_generation_bleu_and_rouge():
    from core.metrics import text_generation_metrics

    same = text_generation_metrics(["a small tool for editing text files"], ["a small tool for editing text files"])
    assert same["bleu4"] == pytest.approx(1.0) and same["rougeL_f1"] == pytest.approx(1.0)
    none = text_generation_metrics(["a small tool"], ["completely different words"])
    assert none["bleu4"] < 0.05 and none["rougeL_f1"] == 0.0


def test_bootstrap_interval_is_reproducible_with_a_seed_and_brackets_the_value():
    from core.metrics import confidence_intervals

    refs = ["a", "b", "c", "a", "b", "c", "a", "b"] * 5
    answers = ["a", "b", "a", "a", "c", "c", "a", "b"] * 5
    one = confidence_intervals("classification", refs, answers, ["a", "b", "c"], seed=7)
    two = confidence_intervals("classification", refs, answers, ["a", "b", "c"], seed=7)
    other = confidence_intervals("classification", refs, answers, ["a", "b", "c"], seed=8)
    assert one == two and one != other
    macro = classification_metrics(refs, answers, ["a", "b", "c"])["macro_f1"]
    lo, hi = one["macro_f1"]
    assert lo < macro < hi and hi - lo < 0.5


def test_per_row_change_marks_fixed_broken_unchanged():
    from core.evaluate import row_change
    from core.metrics import row_scores

    base = row_scores("classification", ["a", "b", "c"], ["a", "x", "c"], ["a", "b", "c"])
    tuned = row_scores("classification", ["a", "b", "c"], ["a", "b", "b"], ["a", "b", "c"])
    assert [row_change(b, t)[1] for b, t in zip(base, tuned)] == ["unchanged", "fixed", "broken"]


def test_constrained_decoding_never_answers_off_label(tiny_model_dir):
    """A random model babbles; constrained to the label set it can only name a label."""
    from core.config import GenerationConfig
    from core.generate import generate_texts, label_sequences
    from core.models import load_model

    labels = ["games", "math", "science fiction"]
    model, tok, _ = load_model(str(tiny_model_dir), tiny_model_dir, "cpu")
    prompts = [f"<|im_start|>user\nText {i}<|im_end|>\n<|im_start|>assistant\n" for i in range(6)]
    free = generate_texts(model, tok, prompts, GenerationConfig(max_output_tokens=6, batch_size=3))
    fixed = generate_texts(model, tok, prompts, GenerationConfig(max_output_tokens=6, batch_size=3),
                           only=label_sequences(tok, labels))
    assert any(parse_label(a, labels) is None for a in free)
    assert all(a in labels for a in fixed), fixed


def test_a_failing_batch_marks_its_rows_failed_not_the_job(tiny_model_dir):
    from core.config import GenerationConfig
    from core.generate import generate_texts
    from core.models import load_model

    model, tok, _ = load_model(str(tiny_model_dir), tiny_model_dir, "cpu")
    real, calls = model.generate, []

    def flaky(**kw):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory")
        return real(**kw)

    model.generate = flaky
    prompts = [f"prompt {i}" for i in range(4)]
    out = generate_texts(model, tok, prompts, GenerationConfig(max_output_tokens=2, batch_size=2), keep_going=True)
    assert out.count(None) == 2 and sum(isinstance(x, str) for x in out) == 2
    with pytest.raises(RuntimeError):
        calls.clear()
        generate_texts(model, tok, prompts, GenerationConfig(max_output_tokens=2, batch_size=2))


def test_streamed_answer_equals_the_batched_one(tiny_model_dir):
    from core.config import GenerationConfig
    from core.generate import generate_texts, stream_text
    from core.models import load_model

    model, tok, _ = load_model(str(tiny_model_dir), tiny_model_dir, "cpu")
    prompt = "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
    cfg = GenerationConfig(max_output_tokens=8)
    parts = list(stream_text(model, tok, prompt, cfg))
    stats = parts[-1]
    assert isinstance(stats, dict) and stats["new_tokens"] > 0
    assert "".join(parts[:-1]).strip() == stats["text"] == generate_texts(model, tok, [prompt], cfg)[0]


# ---------------------------------------------------------------- label scoring (log-likelihood)

def hand_loglik(model, tok, prompt: str, continuation: list[int]) -> float:
    """The whole sequence prompt + continuation in one plain forward pass; the log-probabilities the model
    gives the continuation tokens, summed."""
    import torch

    ids = tok(prompt).input_ids
    full = torch.tensor([ids + continuation])
    with torch.no_grad():
        logp = model(input_ids=full).logits[0].float().log_softmax(-1)
    return sum(float(logp[len(ids) - 1 + k, t]) for k, t in enumerate(continuation))


def test_label_scoring_picks_the_label_with_the_highest_log_likelihood(tiny_model_dir):
    from core.generate import label_sequences
    from core.label_scoring import score_labels, top_two
    from core.models import load_model

    import torch

    model, tok, _ = load_model(str(tiny_model_dir), tiny_model_dir, "cpu", dtype=torch.float32)  # exact sums
    labels = ["games", "math", "science fiction", "web", "gamesx"]  # 1 to 3 tokens, one a prefix of another
    seqs = label_sequences(tok, labels)
    assert len({len(s) for s in seqs}) > 1 and all(s[-1] == tok.eos_token_id for s in seqs)
    prompts = [f"<|im_start|>user\nClassify: {'a long text ' * n}{n}<|im_end|>\n<|im_start|>assistant\n"
               for n in (1, 9, 4, 15)]  # different lengths: left padding in a batch
    stats = {}
    batched = score_labels(model, tok, prompts, labels, batch_size=4, stats=stats)
    assert stats["shared_prefix_tokens"] >= 5  # "<|im_start|>user\nClassify: a long text" ran once, as a cache
    alone = [score_labels(model, tok, [p], labels, batch_size=1)[0] for p in prompts]
    for prompt, b, a in zip(prompts, batched, alone):
        hand = {label: hand_loglik(model, tok, prompt, s) for label, s in zip(labels, seqs)}
        for label in labels:
            assert b["loglik"][label] == pytest.approx(hand[label], abs=1e-4)
            assert a["loglik"][label] == pytest.approx(hand[label], abs=1e-4)  # padding changes nothing
        assert b["label"] == a["label"] == max(hand, key=hand.get)
        kept = top_two(b)
        assert kept["loglik"] == pytest.approx(hand[b["label"]], abs=1e-3)
        assert kept["runner_up"] == sorted(hand, key=hand.get)[-2]


def test_calibration_subtracts_a_share_of_the_labels_content_free_scores(tiny_model_dir):
    from core.generate import label_sequences
    from core.label_scoring import CONTENT_FREE_INPUTS, content_free_prompts, score_labels
    from core.models import load_model

    import torch

    model, tok, _ = load_model(str(tiny_model_dir), tiny_model_dir, "cpu", dtype=torch.float32)
    labels = ["games", "math", "web"]
    seqs = label_sequences(tok, labels)
    render = lambda text: f"<|im_start|>user\nClassify: {text}<|im_end|>\n<|im_start|>assistant\n"  # noqa: E731
    free = content_free_prompts(render)
    assert free == [render(t) for t in CONTENT_FREE_INPUTS]
    prompts = [render("a long text " * n) for n in (2, 7)]
    out = score_labels(model, tok, prompts, labels, calibration=0.5, content_free=free)
    lean = {label: sum(hand_loglik(model, tok, p, s) for p in free) / len(free) for label, s in zip(labels, seqs)}
    for prompt, row in zip(prompts, out):
        hand = {label: hand_loglik(model, tok, prompt, s) - 0.5 * lean[label] for label, s in zip(labels, seqs)}
        for label in labels:
            assert row["loglik"][label] == pytest.approx(hand[label], abs=1e-4)
            assert row["raw_loglik"][label] == pytest.approx(hand[label] + 0.5 * lean[label], abs=1e-4)
        assert row["label"] == max(hand, key=hand.get)
    # Off (the default of score_labels itself): plain log-likelihoods, no raw copy.
    assert "raw_loglik" not in score_labels(model, tok, prompts[:1], labels, content_free=free)[0]


def test_a_failing_scoring_batch_marks_its_rows_failed(tiny_model_dir):
    from core.label_scoring import score_labels
    from core.models import load_model

    model, tok, _ = load_model(str(tiny_model_dir), tiny_model_dir, "cpu")
    real, calls = model.forward, []

    def flaky(*args, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return real(*args, **kw)

    model.forward = flaky
    seen = []
    out = score_labels(model, tok, ["a", "b c", "d e f"], ["games", "math"], batch_size=2, keep_going=True,
                       progress=lambda done, total: seen.append((done, total)))
    assert out.count(None) == 2 and out[2]["label"] in ("games", "math")
    assert seen == [(2, 3), (3, 3)]
    calls.clear()
    with pytest.raises(RuntimeError):
        score_labels(model, tok, ["a"], ["games", "math"])


def test_score_mode_evaluation_answers_only_labels_and_records_the_mode(workspace, tiny_model_dir,
                                                                         tiny_classification):
    """Classification evaluates by label scoring unless asked otherwise: a random model names a label
    on every row, and metrics.json says how its answers were made."""
    import json

    from core import runs
    from core.config import EvalConfig
    from core.evaluate import run_evaluation

    _, ev = tiny_classification
    cfg = EvalConfig(data=str(ev), task="classification", model=str(tiny_model_dir), limit=6, device="cpu")
    assert cfg.mode == "score"
    seen = []
    result = run_evaluation(workspace, cfg, workspace / "evals" / "e1", progress=lambda d, t: seen.append((d, t)))
    metrics = runs.read_json(workspace / "evals" / "e1" / "metrics.json")
    assert metrics["mode"] == "score" and metrics["labels"] == ["games", "math"] and metrics["calibration"] == 0.5
    assert result["base"]["off_label_count"] == 0 and seen[0] == (0, 6) and seen[-1] == (6, 6)
    rows = [json.loads(x) for x in (workspace / "evals" / "e1" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["base"] in ("games", "math") and r["base_label"] == r["base"] for r in rows)
    assert all(r["base_runner_up"] != r["base"] and r["base_loglik"] >= r["base_runner_up_loglik"] for r in rows)
    assert all(r["base_score"] == float(r["base"] == r["reference"]) for r in rows)

    run_evaluation(workspace, EvalConfig(data=str(ev), task="classification", model=str(tiny_model_dir), limit=2,
                                         device="cpu", mode="generate"), workspace / "evals" / "e2")
    metrics = runs.read_json(workspace / "evals" / "e2" / "metrics.json")
    assert metrics["mode"] == "generate" and "calibration" not in metrics
    rows = [json.loads(x) for x in (workspace / "evals" / "e2" / "predictions.jsonl").read_text().splitlines()]
    assert "base_loglik" not in rows[0]
