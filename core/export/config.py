"""What an export job is asked to do (job.json's config for kind `export`)."""
from __future__ import annotations

from dataclasses import dataclass

from core.config import ConfigError, JobConfig
from core.names import DEVICES

FORMATS = ("adapter", "merged", "gguf")
FORMAT_NAMES = {"adapter": "Adapter (PEFT)", "merged": "Merged model (safetensors)", "gguf": "GGUF (llama.cpp, Ollama)"}
# GGUF tensor types the `gguf` package can write: float copies, and the block quantizations it implements
# in numpy (llama.cpp's k-quants need its own llama-quantize program). 1-D tensors (norms) stay f32.
GGUF_QUANTS = ("f16", "q8_0", "bf16", "f32", "q5_1", "q5_0", "q4_1", "q4_0")
GGUF_QUANT_NOTES = {"f16": "half precision: same answers as the merged model, half its size",
                    "q8_0": "8-bit blocks: about a quarter of f32, nearly always the same answers",
                    "bf16": "bfloat16 copy", "f32": "full precision copy (largest)",
                    "q5_1": "5-bit blocks", "q5_0": "5-bit blocks", "q4_1": "4-bit blocks", "q4_0": "4-bit blocks (smallest)"}
VERIFY_PROMPTS = 5


@dataclass
class ExportConfig(JobConfig):
    run_id: str
    """The finished run to export."""
    format: str = "adapter"
    """adapter, merged or gguf."""
    quant: str = "f16"
    """GGUF only: the tensor type of the 2-D weights (GGUF_QUANTS)."""
    ollama: bool = False
    """GGUF only: write an Ollama Modelfile beside the GGUF file."""
    checkpoint: int | None = None
    """Export the checkpoint of this step instead of the run's adapter (its best or last)."""
    verify_prompts: int = VERIFY_PROMPTS
    """How many eval prompts the second runtime answers for the verification; 0 skips it."""
    device: str = "auto"
    """Where the merge and the studio's own answers run; the queue of this device is used."""

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.quant not in GGUF_QUANTS:
            raise ConfigError(f"quant must be one of {', '.join(GGUF_QUANTS)}, got {self.quant!r}")
        if self.ollama and self.format != "gguf":
            raise ConfigError("an Ollama Modelfile goes with a GGUF export: use format gguf with ollama")
        if self.checkpoint is not None and (not isinstance(self.checkpoint, int) or self.checkpoint < 1):
            raise ConfigError(f"checkpoint must be a step number (1 or more), got {self.checkpoint!r}")
        if not isinstance(self.verify_prompts, int) or not 0 <= self.verify_prompts <= 50:
            raise ConfigError(f"verify_prompts must be 0..50, got {self.verify_prompts!r}")
        if self.device not in DEVICES:
            raise ConfigError(f"device must be {'/'.join(DEVICES)}, got {self.device!r}")

    @property
    def label(self) -> str:
        """The export's folder name under runs/<id>/exports/: one per format, quantization and checkpoint,
        so exporting the same thing again replaces it and different things sit side by side."""
        label = f"gguf-{self.quant}" if self.format == "gguf" else self.format
        return label + (f"-step{self.checkpoint}" if self.checkpoint else "")
