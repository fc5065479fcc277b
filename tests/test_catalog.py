import pytest

from conftest import write_jsonl
from core.catalog import delete_dataset, list_datasets, register_dataset, split_examples
from core.data import DataError, load_dataset


def rows(n):
    return [{"input_text": f"row {i}", "output_text": "x", "when": f"{n - i:05d}", "holdout": "true" if i % 4 == 0 else "false"}
            for i in range(n)]


def test_auto_split_thresholds(tmp_path):
    small = load_dataset(write_jsonl(tmp_path / "s.jsonl", rows(499)))
    assert [len(x) for x in split_examples(small, "AUTO_SPLIT")] == [499, 0]
    big = load_dataset(write_jsonl(tmp_path / "b.jsonl", rows(2000)))
    train, held = split_examples(big, "AUTO_SPLIT")
    assert len(train) + len(held) == 2000 and 330 < len(held) < 470  # ~20%


def test_random_split_is_deterministic_by_row_not_order(tmp_path):
    data = rows(300)
    a = load_dataset(write_jsonl(tmp_path / "a.jsonl", data))
    b = load_dataset(write_jsonl(tmp_path / "b.jsonl", list(reversed(data))))
    held_a = {e["input_text"] for e in split_examples(a, "RANDOM", 0.3)[1]}
    held_b = {e["input_text"] for e in split_examples(b, "RANDOM", 0.3)[1]}
    assert held_a == held_b and 50 < len(held_a) < 130


def test_custom_and_seq_splits(tmp_path):
    d = load_dataset(write_jsonl(tmp_path / "d.jsonl", rows(20)))
    train, held = split_examples(d, "CUSTOM", column="holdout")
    assert [e["input_text"] for e in held] == ["row 0", "row 4", "row 8", "row 12", "row 16"]
    train, held = split_examples(d, "SEQ", 0.25, column="when")  # `when` falls as rows go on
    assert [e["input_text"] for e in held] == ["row 4", "row 3", "row 2", "row 1", "row 0"]
    with pytest.raises(DataError, match="needs a column"):
        split_examples(d, "SEQ")


def test_register_list_delete(tmp_path):
    src = write_jsonl(tmp_path / "d.jsonl", rows(30))
    entry = register_dataset(tmp_path / "ws", src, "mine", "NO_SPLIT")
    assert entry["train_rows"] == 30 and entry["eval_file"] is None
    assert list(list_datasets(tmp_path / "ws")) == ["mine"]
    delete_dataset(tmp_path / "ws", "mine")
    assert list_datasets(tmp_path / "ws") == {}


def test_a_file_with_bad_rows_registers_as_a_fixed_copy(tmp_path):
    from core.datacheck import apply_fixes
    from core.data import parse_dataset

    data = rows(14)
    del data[3]["output_text"]
    src = write_jsonl(tmp_path / "bad.jsonl", data)
    with pytest.raises(DataError):
        register_dataset(tmp_path / "ws", src, "as-is", "NO_SPLIT")
    valid, problems = parse_dataset(src)
    entry = register_dataset(tmp_path / "ws", src, "fixed", "NO_SPLIT", examples=apply_fixes(valid, ["strip"]))
    assert len(problems) == 1 and entry["train_rows"] == 13
