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
    (b'["not", "an object"]\n', "not an object"),
    (b'{"input_text": "x", "output_text": "y"}\n\n{"input_text": "\x81\x8d", "output_text": "z"}\n',
     "line 3: not UTF-8"),
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


def test_windows_1252_file_loads_with_a_note(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("input_text,output_text\ncaf\xe9 au lait,drink\n".encode("latin-1") * 1)
    d = load_dataset(p)
    assert d.examples[0]["input_text"] == "café au lait"
    assert d.notes and "Windows-1252" in d.notes[0] and "line 2" in d.notes[0]


def test_gzip_and_json_array_and_tsv(tmp_path):
    import gzip as gz

    data = rows()
    (tmp_path / "d.jsonl.gz").write_bytes(gz.compress("".join(json.dumps(r) + "\n" for r in data).encode()))
    (tmp_path / "d.json").write_text(json.dumps(data))
    (tmp_path / "d.tsv").write_text("input_text\toutput_text\n" + "".join(f"{r['input_text']}\t{r['output_text']}\n" for r in data))
    for name in ("d.jsonl.gz", "d.json", "d.tsv"):
        assert [e["output_text"] for e in load_dataset(tmp_path / name).examples] == [r["output_text"] for r in data]


def test_chat_messages_and_contents_parts(tmp_path):
    chat = tmp_path / "chat.jsonl"
    chat.write_text(json.dumps({"messages": [{"role": "system", "content": "Be brief."},
                                             {"role": "user", "content": "Hi"}, {"role": "model", "content": "Hello"},
                                             {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Ciao"}]}) + "\n")
    d = load_dataset(chat)
    assert d.format == "chat" and [m["role"] for m in d.examples[0]["messages"]] == \
        ["system", "user", "assistant", "user", "assistant"]
    vertex = tmp_path / "contents.jsonl"
    vertex.write_text(json.dumps({"systemInstruction": {"role": "system", "parts": [{"text": "Be brief."}]},
                                  "contents": [{"role": "user", "parts": [{"text": "Hi"}]},
                                               {"role": "model", "parts": [{"text": "Hello"}]}]}) + "\n")
    assert load_dataset(vertex).examples[0]["messages"] == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"}]
    bad = tmp_path / "bad_chat.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "Hi"}, {"role": "robot", "content": "x"}]}) + "\n")
    with pytest.raises(DataError, match=r"line 1, field `messages\[2\]\.role`: unknown role"):
        load_dataset(bad)


def test_preference_pairs_both_styles(tmp_path):
    v = tmp_path / "prefs.jsonl"
    v.write_text(json.dumps({"input_text": "q", "candidate_0": "bad", "candidate_1": "good", "choice": 1}) + "\n" +
                 json.dumps({"input_text": "q", "candidate_0": "a", "candidate_1": "b", "choice": 3}) + "\n")
    with pytest.raises(DataError, match="line 2, field `choice`: must be 0 or 1"):
        load_dataset(v)
    v.write_text(json.dumps({"input_text": "q", "candidate_0": "bad", "candidate_1": "good", "choice": 1}) + "\n")
    d = load_dataset(v)
    assert d.format == "preference" and d.examples[0] | {} == {"prompt": "q", "chosen": "good", "rejected": "bad", "line": 1}
    t = tmp_path / "dpo.jsonl"
    t.write_text(json.dumps({"prompt": "q", "chosen": "y", "rejected": "n"}) + "\n")
    assert load_dataset(t).examples[0]["chosen"] == "y"


def test_unlabeled_prompts(tmp_path):
    p = tmp_path / "prompts.csv"
    p.write_text("text\nfirst prompt\nsecond prompt\n")
    d = load_dataset(p, require_output=False)
    assert d.format == "unlabeled" and [e["input_text"] for e in d.examples] == ["first prompt", "second prompt"]
    with pytest.raises(DataError, match="no prompt/answer columns"):
        load_dataset(p)  # a supervised run needs answers


def test_a_forced_format_without_its_columns_says_so(tmp_path):
    p = tmp_path / "plain.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows()))
    for fmt, col in (("chat", "messages"), ("preference", "candidate_0")):
        with pytest.raises(DataError, match=f"read as {fmt} data but has no .*{col}"):
            load_dataset(p, format=fmt)
