"""The real bundled model (SmolLM2-135M-Instruct), no network: it converts, tunes a few steps, answers."""
import pytest

from core import runs
from core.config import BUNDLED_MODEL, GenerationConfig, LoraSettings, TuneConfig
from core.templates import default_template, render_prompt
from core.train import run_tuning

pytestmark = pytest.mark.real_model


def test_bundled_model_tunes_and_generates(model_cache, bundled_dir, tiny_classification):
    from core.generate import generate_texts
    from core.models import load_model

    train, ev = tiny_classification
    cfg = TuneConfig(task="classification", train_file=str(train), eval_file=str(ev), model=BUNDLED_MODEL,
                     template=default_template("classification", ["games", "math"]), labels=["games", "math"],
                     max_iterations=3, learning_rate=2e-4, batch_size=2, max_seq_length=256, eval_every=3,
                     lora=LoraSettings(rank=4, alpha=8), device="cpu")
    run_dir = runs.create_run(model_cache, cfg.to_dict())  # same workspace as the converted model
    run_tuning(run_dir)
    status = runs.read_status(run_dir)
    assert status["state"] == "succeeded" and status["step"] == 3
    assert [m["step"] for m in runs.read_metrics(run_dir) if "eval_loss" in m] == [3]

    model, tok, device = load_model(BUNDLED_MODEL, model_cache, "cpu", adapter=run_dir / "adapter")
    prompt = render_prompt(tok, cfg.template, "A chess engine with a graphical board and network play.")
    stats = {}
    [answer] = generate_texts(model, tok, [prompt], GenerationConfig(max_output_tokens=8), stats=stats)
    assert answer.strip() and stats["new_tokens"] > 0
    with model.disable_adapter():
        [base_answer] = generate_texts(model, tok, [prompt], GenerationConfig(max_output_tokens=8))
    assert base_answer.strip()
