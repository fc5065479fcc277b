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


# ---------------------------------------------------------------- rows handed in directly, no temporary files

def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def catalog_files(ws, *names):
    return sorted(["catalog/catalog.json"] + [f"catalog/{n}/{f}" for n in names for f in ("train.jsonl", "eval.jsonl")
                                              if (ws / "catalog" / n / f).exists()])


def test_register_rows_with_a_separate_eval_set(tmp_path):
    from core.catalog import EVAL_FILE, register_file, register_rows
    from core.data import parse_dataset

    ws = tmp_path / "ws"
    train = load_dataset(write_jsonl(tmp_path / "t.jsonl", rows(20))).examples
    held = load_dataset(write_jsonl(tmp_path / "e.jsonl", rows(6))).examples
    entry = register_rows(ws, "with-eval", train, source=tmp_path / "t.jsonl", format="prompt_answer",
                          eval_rows=held, eval_source=tmp_path / "e.jsonl")
    assert (entry["split"], entry["rows"], entry["train_rows"], entry["eval_rows"]) == (EVAL_FILE, 26, 20, 6)
    assert entry["source"] == str((tmp_path / "t.jsonl").resolve())
    assert len(load_dataset(entry["eval_file"])) == 6 and "line" not in open(entry["train_file"]).readline()
    # The same through the file reader the Datasets page calls.
    entry = register_file(ws, tmp_path / "t.jsonl", "from-files", eval_path=tmp_path / "e.jsonl", split="RANDOM")
    assert (entry["train_rows"], entry["eval_rows"], entry["split"]) == (20, 6, EVAL_FILE)
    assert files_under(ws) == catalog_files(ws, "with-eval", "from-files")
    assert parse_dataset(entry["eval_file"])[0].format == "prompt_answer"


def test_custom_split_column_on_a_file_with_a_bad_row(tmp_path):
    from core.catalog import register_file, register_rows, split_column_values
    from core.data import parse_dataset

    data = rows(20)
    del data[5]["output_text"]  # line 6; `holdout` is true on lines 1, 5, 9, 13, 17
    src = write_jsonl(tmp_path / "bad.jsonl", data)
    ws = tmp_path / "ws"
    with pytest.raises(DataError, match="output_text"):  # bad rows are never dropped unless asked
        register_file(ws, src, "as-is", split="CUSTOM", split_column="holdout")
    entry = register_file(ws, src, "custom", split="CUSTOM", split_column="holdout", fixes=["drop_invalid"])
    assert (entry["rows"], entry["train_rows"], entry["eval_rows"]) == (19, 14, 5)
    assert entry["split"] == "CUSTOM" and entry["split_column"] == "holdout"
    held = [e["input_text"] for e in load_dataset(entry["eval_file"]).examples]
    assert held == ["row 0", "row 4", "row 8", "row 12", "row 16"]
    assert "row 5" not in open(entry["train_file"]).read()
    # register_rows with the split values given directly: the same split.
    valid, _ = parse_dataset(src)
    again = register_rows(ws, "direct", valid.examples, source=src, format="prompt_answer", split="CUSTOM",
                          split_values=split_column_values(src, "holdout"), split_column="holdout")
    assert open(again["eval_file"]).read() == open(entry["eval_file"]).read()
    assert files_under(ws) == catalog_files(ws, "custom", "direct")  # no temporary file anywhere
    assert files_under(tmp_path) == sorted(["bad.jsonl", *(f"ws/{f}" for f in catalog_files(ws, "custom", "direct"))])
    with pytest.raises(DataError, match="needs a column"):
        register_rows(ws, "no-values", valid.examples, source=src, format="prompt_answer", split="SEQ")
    with pytest.raises(DataError, match="no split value"):
        register_rows(ws, "few-values", valid.examples, source=src, format="prompt_answer", split="CUSTOM",
                      split_values={1: "true"})


def test_seq_split_on_mixed_values_is_a_data_error(tmp_path):
    from core.catalog import register_rows

    data = load_dataset(write_jsonl(tmp_path / "d.jsonl", rows(20))).examples
    values = {e["line"]: (e["line"] if e["line"] % 2 else f"{e['line']}") for e in data}
    with pytest.raises(DataError, match="mixes numbers and text") as e:
        register_rows(tmp_path / "ws", "mixed", data, source=tmp_path / "d.jsonl", format="prompt_answer",
                      split="SEQ", split_values=values, split_column="when")
    assert e.value.field == "when"


def test_register_with_a_forced_format(tmp_path):
    from core.catalog import register_file, register_rows

    ws = tmp_path / "ws"
    src = write_jsonl(tmp_path / "prompts.jsonl", [{"text": f"prompt {i}", "label": "x"} for i in range(12)])
    assert register_file(ws, src, "detected", split="NO_SPLIT")["format"] == "prompt_answer"
    entry = register_file(ws, src, "prompts-only", format="unlabeled", columns=("text", None), split="NO_SPLIT")
    assert entry["format"] == "unlabeled" and entry["train_rows"] == 12
    assert open(entry["train_file"]).readline().strip() == '{"input_text": "prompt 0"}'
    with pytest.raises(DataError, match="has no messages"):
        register_file(ws, src, "as-chat", format="chat")
    with pytest.raises(DataError, match="missing from a chat row") as e:  # rows must match the format given
        register_rows(ws, "wrong", load_dataset(src).examples, source=src, format="chat", split="NO_SPLIT")
    assert e.value.line == 1 and e.value.field == "messages"
    assert files_under(ws) == catalog_files(ws, "detected", "prompts-only")


def test_register_refuses_a_bad_name_before_reading(tmp_path):
    from core.catalog import register_file

    with pytest.raises(DataError, match="dataset name .* is not a valid name"):
        register_file(tmp_path / "ws", tmp_path / "missing.jsonl", "bad name!")
    assert not (tmp_path / "ws").exists()
