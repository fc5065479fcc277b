"""A merged model folder written as one GGUF file, with the `gguf` package (llama.cpp's own Python writer,
from PyPI): its tensor-name map, its numpy quantizers and its vocabulary readers.

Covered: the Llama family (Llama, Mistral, SmolLM: `llama`) and Qwen2 (`qwen2`) with a byte-level BPE
tokenizer, which is what llama.cpp's converter does for these too — the Q and K projections of `llama`
re-ordered into the interleaved rotary layout llama.cpp computes with. Anything else gets an error that
points to llama.cpp's convert_hf_to_gguf.py, which takes the merged folder as it is."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

# The architectures written here: HF class → (GGUF architecture, Q/K rows re-ordered for llama.cpp's rope).
ARCHITECTURES = {"LlamaForCausalLM": ("llama", True), "MistralForCausalLM": ("llama", True),
                 "Qwen2ForCausalLM": ("qwen2", False)}
# llama.cpp's file type per tensor type of the 2-D weights (general.file_type).
_FILE_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "bf16": 32}


class GGUFExportError(RuntimeError):
    """The model or its tokenizer is of a kind this writer does not cover; the hint says what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.hint = ("Export the merged model instead and convert that folder with llama.cpp's "
                     "convert_hf_to_gguf.py (it covers many more architectures).")


def _permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """HF stores each head's rotary halves apart ([x0..x31, y0..y31]); llama.cpp wants them paired
    ([x0, y0, x1, y1 …]). The same re-ordering llama.cpp's converter applies, and transformers' GGUF
    loader undoes."""
    return (weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def _rope_theta(config: dict) -> float:
    params = config.get("rope_parameters") or {}
    return float(config.get("rope_theta") or params.get("rope_theta") or 10000.0)


def _check_supported(config: dict) -> tuple[str, bool]:
    arch = (config.get("architectures") or ["?"])[0]
    if arch not in ARCHITECTURES:
        raise GGUFExportError(f"GGUF export covers {', '.join(ARCHITECTURES)}; this model is {arch}")
    scaling = config.get("rope_scaling") or {}
    kind = scaling.get("rope_type") or scaling.get("type") or (config.get("rope_parameters") or {}).get("rope_type")
    if kind not in (None, "default"):
        raise GGUFExportError(f"GGUF export does not cover rotary scaling `{kind}` yet")
    return ARCHITECTURES[arch]


def _tensor_type(shape: tuple[int, ...], quant: str):
    """The GGML type of one tensor: 1-D tensors (norms, biases) stay f32, as in llama.cpp's converter;
    2-D tensors get `quant`, or f16 where a row does not fill whole quantization blocks."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    if len(shape) < 2 or quant == "f32":
        return GGMLQuantizationType.F32
    qtype = GGMLQuantizationType[quant.upper()]
    block = GGML_QUANT_SIZES[qtype][0]
    return qtype if shape[-1] % block == 0 else GGMLQuantizationType.F16


def _encode(data: np.ndarray, qtype) -> tuple[np.ndarray, object | None]:
    """(array for the writer, raw dtype): float copies as numpy floats, blocks as quantized bytes."""
    from gguf import GGMLQuantizationType, quants

    if qtype == GGMLQuantizationType.F32:
        return data.astype(np.float32), None
    if qtype == GGMLQuantizationType.F16:
        return data.astype(np.float16), None
    return quants.quantize(data.astype(np.float32), qtype), qtype


def _add_vocabulary(writer, folder: Path, vocab_size: int, pre: str) -> None:
    """Tokens, merges, special tokens and the chat template (tokenizer_config.json's: for an export, the
    one that carries the run's prompt template)."""
    from gguf import SpecialVocab, TokenType
    from gguf.vocab import BpeVocab

    try:
        vocab = BpeVocab(folder)
    except FileNotFoundError as e:
        raise GGUFExportError("GGUF export covers byte-level BPE tokenizers (tokenizer.json of type BPE); "
                              f"this model's tokenizer is another kind ({e})") from e
    tokens, types = [], []
    for text, _score, kind in vocab.all_tokens():
        tokens.append(text if isinstance(text, bytes) else str(text).encode("utf-8"))
        types.append(kind)
    for i in range(len(tokens), vocab_size):  # rows of the embedding no token uses
        tokens.append(f"[PAD{i}]".encode())
        types.append(TokenType.UNUSED)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    SpecialVocab(folder, load_merges=True, n_vocab=len(tokens)).add_to_gguf(writer, quiet=True)


def write_gguf(folder: str | Path, out_path: str | Path, quant: str = "f16", *, name: str = "",
               pre: str = "default", progress: Callable[[int, int], None] | None = None) -> dict:
    """Write the model in `folder` (safetensors + tokenizer) to `out_path`. `pre` is llama.cpp's name for
    the tokenizer's pre-split rules (e.g. `smollm`; `default` when unknown). Returns what was written."""
    import torch
    from gguf import GGML_QUANT_VERSION, GGUFWriter, MODEL_ARCH_NAMES, get_tensor_name_map
    from safetensors import safe_open

    folder, out_path = Path(folder), Path(out_path)
    config = json.loads((folder / "config.json").read_text())
    arch_name, permute = _check_supported(config)
    arch = next(a for a, n in MODEL_ARCH_NAMES.items() if n == arch_name)
    blocks, heads = config["num_hidden_layers"], config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    names = get_tensor_name_map(arch, blocks)

    writer = GGUFWriter(out_path, arch_name)
    writer.add_name(name or folder.name)
    writer.add_context_length(config.get("max_position_embeddings") or 2048)
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(blocks)
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_layer_norm_rms_eps(config.get("rms_norm_eps") or 1e-6)
    writer.add_vocab_size(config["vocab_size"])
    if head_dim != config["hidden_size"] // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_file_type(_FILE_TYPES[quant])
    writer.add_quantization_version(GGML_QUANT_VERSION)
    _add_vocabulary(writer, folder, config["vocab_size"], pre)

    files = sorted(folder.glob("*.safetensors"))
    total = sum(len(safe_open(f, framework="pt").keys()) for f in files)
    tied = config.get("tie_word_embeddings", False)
    counts: dict[str, int] = {}
    done = 0
    for file in files:
        with safe_open(file, framework="pt") as f:
            for key in f.keys():
                done += 1
                if key == "lm_head.weight" and tied:
                    continue  # llama.cpp reads the output layer from token_embd when output.weight is absent
                gguf_name = names.get_name(key, try_suffixes=(".weight", ".bias"))
                if gguf_name is None:
                    raise GGUFExportError(f"no GGUF name for the tensor `{key}` of {file.name}")
                data = f.get_tensor(key).to(torch.float32).numpy()
                if permute and key.endswith("self_attn.q_proj.weight"):
                    data = _permute(data, heads)
                elif permute and key.endswith("self_attn.k_proj.weight"):
                    data = _permute(data, kv_heads)
                qtype = _tensor_type(data.shape, quant)
                array, raw = _encode(data, qtype)
                writer.add_tensor(gguf_name, array, raw_dtype=raw)
                counts[qtype.name] = counts.get(qtype.name, 0) + 1
                if progress:
                    progress(done, total)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"file": out_path.name, "architecture": arch_name, "tensor_types": counts, "pre_tokenizer": pre,
            "bytes": out_path.stat().st_size}


def read_back(path: str | Path) -> dict:
    """What a GGUF file holds, read by the `gguf` package's reader: metadata (strings and numbers; token
    lists by length) and every tensor's name, shape (GGUF order: innermost first) and type."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    meta = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        value = field.contents()
        meta[key] = len(value) if isinstance(value, list) and len(value) > 64 else value
    tensors = {t.name: {"shape": [int(s) for s in t.shape], "type": t.tensor_type.name} for t in reader.tensors}
    return {"metadata": meta, "tensors": tensors}
