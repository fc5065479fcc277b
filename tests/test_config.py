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


def test_recommended_steps_follow_data_size_inside_reference_range():
    steps, why = recommend_steps("classification", 400, 8)
    assert steps == 150 and "100–500" in why
    assert recommend_steps("classification", 20, 8)[0] == 100  # small set: floor of the range
    assert recommend_steps("summarization", 100_000, 8)[0] == 1000  # large set: ceiling
