import json

import pandas as pd
import pytest

from conftest import SHARED_DATA
from core.data import DataError, load_dataset


def rows(n=12):
    return [{"input_text": f"text number {i}", "output_text": "a" if i % 2 else "b"} for i in range(n)]


def test_jsonl_csv_parquet_load_the_same_examples(tmp_path):
    df = pd.DataFrame(rows())
    (tmp_path / "d.jsonl").write_text(df.to_json(orient="records", lines=True))
    df.to_csv(tmp_path / "d.csv", index=False, encoding="utf-8-sig")  # with a BOM, as Excel writes
    df.to_parquet(tmp_path / "d.parquet")
    loaded = [load_dataset(tmp_path / f"d.{ext}") for ext in ("jsonl", "csv", "parquet")]
    texts = [[(e["input_text"], e["output_text"]) for e in d.examples] for d in loaded]
    assert texts[0] == texts[1] == texts[2]
    assert len(loaded[0]) == 12 and loaded[0].labels == ["a", "b"]
    assert loaded[1].examples[0]["line"] == 2  # CSV: header is line 1


def test_prompt_label_columns_and_mapping(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps({"prompt": r["input_text"], "label": r["output_text"]}) + "\n" for r in rows()))
    assert load_dataset(p).input_column == "prompt"
    q = tmp_path / "e.jsonl"
    q.write_text("".join(json.dumps({"question": r["input_text"], "answer": r["output_text"]}) + "\n" for r in rows()))
    with pytest.raises(DataError, match="no prompt/answer columns"):
        load_dataset(q)
    assert load_dataset(q, "question", "answer").examples[3]["output_text"] == "a"


def test_missing_field_names_file_line_and_field(tmp_path):
    data = rows()
    del data[4]["output_text"]
    p = tmp_path / "broken.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in data))
    with pytest.raises(DataError) as e:
        load_dataset(p)
    assert e.value.line == 5 and e.value.field == "output_text"
    assert "broken.jsonl, line 5, field `output_text`" in str(e.value)


@pytest.mark.parametrize("content,expect", [
    (b"", "empty"),
    (b'{"input_text": "a", "output_text": "b"}\n{"input_text": "tru', "line 2"),
    (b'["not", "an object"]\n', "expected a JSON object"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
])
def test_malformed_jsonl_gets_a_clear_error(tmp_path, content, expect):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(content)
    with pytest.raises(DataError, match=expect):
        load_dataset(p)


def test_header_only_csv_and_unknown_suffix(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("input_text,output_text\n")
    with pytest.raises(DataError, match="header but no rows"):
        load_dataset(p)
    x = tmp_path / "x.xlsx"
    x.write_text("x")
    with pytest.raises(DataError, match="unsupported file type"):
        load_dataset(x)


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="shared data not present")
def test_real_debian_classification_set_loads():
    d = load_dataset(SHARED_DATA / "debian_classification_eval.jsonl")
    assert len(d) == 1123 and len(d.labels) == 17
