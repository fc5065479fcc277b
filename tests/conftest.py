"""Shared fixtures. The bundled model is converted once into .cache/ (gitignored, ~20 s the first
time); the tiny random model reuses its tokenizer so prompts and chat templates are real."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
SHARED_DATA = ROOT.parent / "shared" / "data"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def model_cache() -> Path:
    path = ROOT / ".cache" / "test-workspace"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def bundled_dir(model_cache) -> Path:
    from core.models import ensure_bundled_model

    return ensure_bundled_model(model_cache)


@pytest.fixture(scope="session")
def tiny_model_dir(bundled_dir, tmp_path_factory) -> Path:
    """A 2-layer random Llama with the bundled model's tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(bundled_dir)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    out = tmp_path_factory.mktemp("tiny-model")
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    monkeypatch.setenv("STUDIO_WORKSPACE", str(ws))
    return ws


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Path:
    """A workspace for page tests: the studio reads STUDIO_WORKSPACE."""
    monkeypatch.setenv("STUDIO_WORKSPACE", str(tmp_path))
    return tmp_path


def open_page(page: str):
    """An AppTest on the real navigation (studio/app.py), switched to one page, run without exception."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "studio" / "app.py"), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page(f"app_pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def tiny_classification(tmp_path) -> tuple[Path, Path]:
    """A small two-class set, cut from the bundled sample so the text is real."""
    rows = [json.loads(x) for x in (ASSETS / "classification_train.jsonl").read_text().splitlines()]
    keep = [r for r in rows if r["output_text"] in ("games", "math")][:24]
    train = write_jsonl(tmp_path / "train.jsonl", keep[:16])
    ev = write_jsonl(tmp_path / "eval.jsonl", keep[16:24])
    return train, ev
