"""A tiny Stable-Diffusion-class pipeline built from configs: a small UNet2DConditionModel, AutoencoderKL and
CLIPTextModel with random weights, and a CLIP tokenizer whose vocabulary the project writes itself (every
byte as a token, no merges), so nothing is downloaded. Saved with save_pipeline it is a folder like any real
pipeline and is loaded by path through the same code, which is how the tests and the demo workspace run the
whole image road on a CPU in seconds. Its pictures are noise: it proves the plumbing, not the art."""
from __future__ import annotations

import json
from pathlib import Path

TINY_RESOLUTION = 32   # pixels; the VAE halves it once, so the UNet sees 16x16 latents
TOKENS = 77            # CLIP's prompt length; one token a character here, so prompts up to 75 characters fit


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP's byte → printable character table (the tokenizer's own, rebuilt here)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def write_tokenizer(folder: Path) -> Path:
    """vocab.json + merges.txt of a character-level CLIP tokenizer: each byte alone and at a word's end
    ("</w>"), and the two special tokens. Deterministic: the same files every time."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False),
                                       encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return folder


def build_pipeline(seed: int = 0, folder: Path | None = None):
    """The tiny StableDiffusionPipeline (random weights from `seed`); its tokenizer files go to `folder`
    (a temporary folder when not given)."""
    import tempfile

    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tok_dir = write_tokenizer(Path(folder or tempfile.mkdtemp(prefix="tiny-tokenizer-")))
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=TOKENS)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=TINY_RESOLUTION // 2, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 32), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32, attention_head_dim=4,
        norm_num_groups=8)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(16, 32), latent_channels=4,
                        norm_num_groups=8, sample_size=TINY_RESOLUTION)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=TOKENS, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, projection_dim=32))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def save_tiny_pipeline(target: str | Path, seed: int = 0) -> Path:
    """The tiny pipeline as a diffusers folder (model_index.json, safetensors weights) at `target`."""
    target = Path(target)
    pipe = build_pipeline(seed, folder=target / "tokenizer")
    pipe.save_pretrained(str(target), safe_serialization=True)
    return target


def save_tiny_clip(target: str | Path, seed: int = 0) -> Path:
    """A tiny random CLIP model with its processor (the same character tokenizer): the scoring code's
    stand-in for a real CLIP model in tests. Its numbers mean nothing; that they are computed does."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    target = Path(target)
    tok_dir = write_tokenizer(target / ".vocab")
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=TOKENS)
    torch.manual_seed(seed)
    text = {"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4,
            "num_hidden_layers": 2, "max_position_embeddings": TOKENS, "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
              "image_size": 32, "patch_size": 8}
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
    model.save_pretrained(str(target), safe_serialization=True)
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                 crop_size={"height": 32, "width": 32}),
                              tokenizer=tokenizer)
    processor.save_pretrained(str(target))
    return target
