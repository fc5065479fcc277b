import json

import pytest

from core.config import BASE_LEARNING_RATE, ConfigError, GenerationConfig, LoraSettings, TuneConfig, \
    recommend_steps


def make(**kw):
    base = dict(task="classification", train_file="t.jsonl", template="Classify: {input_text}")
    return TuneConfig(**{**base, **kw})


def test_valid_config_roundtrips_through_dict():
    cfg = make(learning_rate=4e-4, lora=LoraSettings(rank=4, alpha=8))
    d = cfg.to_dict()
    assert d["learning_rate_multiplier"] == pytest.approx(4e-4 / BASE_LEARNING_RATE)
    again = TuneConfig.from_dict(d)
    assert again == cfg and again.lora.rank == 4


@pytest.mark.parametrize("kw,word", [
    (dict(task="regression"), "task"),
    (dict(template="no placeholder"), "{input_text}"),
    (dict(max_iterations=0), "max_iterations"),
    (dict(learning_rate=2.0), "learning_rate"),
    (dict(batch_size=0), "batch_size"),
    (dict(device="tpu"), "device"),
])
def test_bad_values_name_the_setting(kw, word):
    with pytest.raises(ConfigError, match=word.replace("{", r"\{").replace("}", r"\}")):
        make(**kw)


def test_generation_config_checks_ranges():
    with pytest.raises(ConfigError, match="top_p"):
        GenerationConfig(top_p=0)
    assert GenerationConfig(stop_sequences=["", "\n"]).stop_sequences == ["\n"]


def test_recommended_steps_follow_data_size_inside_the_task_range():
    steps, why = recommend_steps("classification", 519, 8)
    assert steps == 65 and "one pass" in why and "50–500" in why
    assert recommend_steps("classification", 20, 8)[0] == 50  # small set: floor of the range
    assert recommend_steps("summarization", 100_000, 8)[0] == 1000  # large set: ceiling
    assert recommend_steps("text_generation", 400, 8)[0] == 500  # free text: three passes, its own range


def test_the_base_rate_depends_on_method_and_model_size(tmp_path):
    from core.config import DPO_LEARNING_RATE, SMALL_MODEL_LEARNING_RATE, base_learning_rate
    from core.model_size import BUNDLED_PARAMETERS, parameter_estimate, parameters_from_config

    assert base_learning_rate("sft", BUNDLED_PARAMETERS) == SMALL_MODEL_LEARNING_RATE
    assert base_learning_rate("sft", 7_000_000_000) == BASE_LEARNING_RATE
    assert base_learning_rate("sft", None) == BASE_LEARNING_RATE  # unknown size: the common default
    assert base_learning_rate("dpo", BUNDLED_PARAMETERS) == DPO_LEARNING_RATE
    smol = {"hidden_size": 576, "num_hidden_layers": 30, "vocab_size": 49152, "num_attention_heads": 9,
            "num_key_value_heads": 3, "intermediate_size": 1536, "tie_word_embeddings": True}
    assert parameters_from_config(smol) == BUNDLED_PARAMETERS  # the real model's 134.5M
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps({**smol, "num_hidden_layers": 300}))
    assert parameter_estimate(str(tmp_path / "m"), tmp_path) > 1e9
    assert parameter_estimate("no-such-org/no-such-model", tmp_path) is None  # never downloads
    sft = TuneConfig.sft(task="classification", train_file="t.jsonl", rows=519, labels=["a", "b"],
                         parameters=BUNDLED_PARAMETERS)
    assert sft.learning_rate == SMALL_MODEL_LEARNING_RATE and sft.to_dict()["learning_rate_multiplier"] == 1.0
    again = TuneConfig.from_dict(sft.to_dict())
    assert again.learning_rate_multiplier == 1.0 and again.base_learning_rate == SMALL_MODEL_LEARNING_RATE


def test_each_method_builds_its_config_with_its_own_base_rate():
    from core.config import DPO_LEARNING_RATE

    dpo = TuneConfig.dpo(task="text_generation", pairs=40, preference_queue="q1", learning_rate_multiplier=1.0)
    assert dpo.learning_rate == DPO_LEARNING_RATE and dpo.to_dict()["learning_rate_multiplier"] == 1.0
    assert dpo.template == "{input_text}" and dpo.train_file == "queue:q1" and dpo.max_iterations == 50
    sft = TuneConfig.sft(task="classification", train_file="t.jsonl", rows=400, labels=["games", "math"],
                         learning_rate_multiplier=2.0, lora_rank=4)
    assert sft.learning_rate == 2 * BASE_LEARNING_RATE and sft.to_dict()["learning_rate_multiplier"] == 2.0
    assert "games, math" in sft.template and sft.max_iterations == 50 and sft.lora.alpha == 8
    summary = TuneConfig.sft(task="summarization", train_file="t.jsonl", rows=400, labels=["x"])
    assert summary.labels == []  # a label set only for classification


def test_requests_below_the_minimum_fail_with_the_data_named():
    from core.data import DataError

    with pytest.raises(DataError, match="only 9 examples"):
        TuneConfig.sft(task="classification", train_file="t.jsonl", rows=9)
    with pytest.raises(DataError, match="queue q1 has 3 usable pairs"):
        TuneConfig.dpo(task="text_generation", pairs=3, preference_queue="q1")


def test_eval_and_candidates_configs_check_their_fields():
    from core.config import CandidatesConfig, EvalConfig

    assert EvalConfig(data="e.jsonl", task="summarization", constrained=True).constrained is False
    with pytest.raises(ConfigError, match="task"):
        EvalConfig(data="e.jsonl", task="regression")
    with pytest.raises(ConfigError, match="limit"):
        EvalConfig(data="e.jsonl", task="classification", limit=0)
    with pytest.raises(ConfigError, match="queue"):
        CandidatesConfig(prompts="p.jsonl", queue="../x")


def test_evaluation_mode_defaults_validates_and_reads_older_configs():
    from core.config import EvalConfig, recorded_eval_mode

    assert EvalConfig(data="e.jsonl", task="classification").mode == "score"
    assert EvalConfig(data="e.jsonl", task="summarization").mode == "generate"
    assert EvalConfig(data="e.jsonl", task="classification", mode="generate").mode == "generate"
    with pytest.raises(ConfigError, match="mode must be one of auto, score, generate, constrained"):
        EvalConfig(data="e.jsonl", task="classification", mode="fast")
    with pytest.raises(ConfigError, match="classification only"):
        EvalConfig(data="e.jsonl", task="summarization", mode="score")
    with pytest.raises(ConfigError, match="contradict"):
        EvalConfig(data="e.jsonl", task="classification", mode="score", constrained=True)
    # job.json written before modes existed: constrained: true still means constrained decoding
    old = EvalConfig.from_dict({"data": "e.jsonl", "task": "classification", "constrained": True})
    assert old.mode == "constrained" and old.constrained
    again = EvalConfig.from_dict(old.to_dict())
    assert again.mode == "constrained" and again.to_dict() == old.to_dict()
    assert EvalConfig.from_dict({"data": "e.jsonl", "task": "summarization", "constrained": True}).mode == "generate"
    # metrics.json: older files said "free" (or nothing)
    assert [recorded_eval_mode(m) for m in ({"mode": "free"}, {}, {"mode": "constrained"}, {"mode": "score"})] == [
        "generate", "generate", "constrained", "score"]
