import pytest

from core.config import BUNDLED_MODEL
from core.models import ModelError, pick_device, resolve_model


def test_bundled_model_resolves_to_a_safetensors_folder(model_cache, bundled_dir):
    path = resolve_model(BUNDLED_MODEL, model_cache)
    assert path == str(bundled_dir)
    assert (bundled_dir / "model.safetensors").exists() and (bundled_dir / "tokenizer.json").exists()
    assert "quantization_config" not in (bundled_dir / "config.json").read_text()


def test_local_folder_hub_id_and_bad_names(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(tmp_path / "m"), tmp_path)
    (tmp_path / "m" / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path / "m"), tmp_path) == str(tmp_path / "m")
    assert resolve_model("HuggingFaceTB/SmolLM2-360M-Instruct", tmp_path) == "HuggingFaceTB/SmolLM2-360M-Instruct"
    with pytest.raises(ModelError, match="neither"):
        resolve_model("../../etc/passwd", tmp_path)


def test_device_choice():
    import torch

    assert pick_device("cpu") == "cpu"
    assert pick_device("auto") == ("cuda" if torch.cuda.is_available() else
                                   "mps" if torch.backends.mps.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA"):
            pick_device("cuda")
