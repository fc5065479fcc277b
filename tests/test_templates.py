from core.config import TuneConfig
from core.templates import default_template, fill_template, render_answer, render_prompt
from core.train import build_examples


def test_default_classification_template_lists_the_labels():
    t = default_template("classification", ["games", "math"])
    assert "games, math" in t and "{input_text}" in t


def test_braces_in_text_survive(bundled_dir):
    assert fill_template("Q: {input_text}", "f({x}) = {}") == "Q: f({x}) = {}"


def test_prompt_is_wrapped_in_the_chat_template(tiny_model_dir):
    from core.models import load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir))
    p = render_prompt(tok, "Say: {input_text}", "hello")
    assert "<|im_start|>user\nSay: hello<|im_end|>" in p and p.endswith("<|im_start|>assistant\n")
    assert render_answer(tok, "hi") == "hi<|im_end|>"


def test_training_prompts_equal_prediction_prompts(tiny_model_dir, tiny_classification):
    """The exact string trained on is the one generation renders for the same row."""
    from core.data import load_dataset
    from core.models import load_tokenizer

    train, ev = tiny_classification
    tok = load_tokenizer(str(tiny_model_dir))
    cfg = TuneConfig(task="classification", train_file=str(train), eval_file=str(ev),
                     template=default_template("classification", ["games", "math"]))
    train_rows, eval_rows = build_examples(cfg, tok)
    data = load_dataset(train).examples
    assert [r["prompt"] for r in train_rows] == [render_prompt(tok, cfg.template, e["input_text"]) for e in data]
    assert train_rows[0]["completion"] == data[0]["output_text"] + tok.eos_token
    assert len(eval_rows) == 8


def test_multi_turn_chat_trains_on_every_model_turn(tiny_model_dir, tmp_path):
    import json

    from core.models import load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir))
    convo = [{"role": "user", "content": "Hi"}, {"role": "model", "content": "Hello"},
             {"role": "user", "content": "Bye"}, {"role": "model", "content": "Ciao"}]
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps({"messages": convo}) + "\n" for _ in range(10)))
    cfg = TuneConfig(task="text_generation", train_file=str(path), template="{input_text}")
    train_rows, _ = build_examples(cfg, tok)
    assert len(train_rows) == 20  # two model turns in each of ten conversations
    first, second = train_rows[0], train_rows[1]
    assert first["completion"] == "Hello<|im_end|>" and second["completion"] == "Ciao<|im_end|>"
    assert second["prompt"].startswith(first["prompt"] + first["completion"])  # the context holds turn one
    assert second["prompt"].endswith("<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n")


def test_a_fitted_prompt_cuts_the_text_not_the_instruction(tiny_model_dir):
    from transformers import AutoTokenizer

    from core.templates import render_fitted_prompt

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    template = default_template("classification", ["games", "math"])
    short, cut = render_fitted_prompt(tok, template, "a short text", 512)
    assert (short, cut) == (render_prompt(tok, template, "a short text"), False)
    text = " ".join(f"word{i}" for i in range(400))
    full = render_prompt(tok, template, text)
    assert len(tok(full).input_ids) > 200
    fitted, cut = render_fitted_prompt(tok, template, text, 200)
    assert cut and len(tok(fitted).input_ids) <= 200
    # The instruction and the chat turn's end are intact; the text lost its end, not its start.
    head, tail = full.split("word0 ")[0], full.split("word399")[1]
    assert fitted.startswith(head + "word0 word1") and fitted.endswith(tail)
    assert render_fitted_prompt(tok, template, text, None) == (full, False)
