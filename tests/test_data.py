import json
import re

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


# ---- hardening: every failure is a DataError that names the line (and field); no value changes silently

def _lines(path, *texts: str):
    path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    return path


GOOD = json.dumps({"input_text": "a", "output_text": "b"})


@pytest.mark.parametrize("bad,expect", [
    ('{"input_text": ' + "[" * 100_000 + "]" * 100_000 + ', "output_text": "b"}', "nested too deeply"),
    ('{"input_text": "a", "output_text": ' + "9" * 5000 + "}", "Exceeds the limit"),
])
def test_deep_nesting_and_huge_integers_are_data_errors_on_their_line(tmp_path, bad, expect):
    p = _lines(tmp_path / "d.jsonl", GOOD, bad, GOOD)
    with pytest.raises(DataError, match=expect) as e:
        load_dataset(p)
    assert e.value.line == 2 and "d.jsonl, line 2" in str(e.value)


def test_truncated_utf16_names_the_byte_and_line(tmp_path):
    p = tmp_path / "u16.jsonl"
    text = GOOD + "\n" + GOOD + "\n"
    p.write_bytes(b"\xff\xfe" + text.encode("utf-16-le") + b"x")  # one byte short of a character
    with pytest.raises(DataError, match=rf"not valid UTF-16 text \(truncated data at byte {2 + 2 * len(text)}\)") as e:
        load_dataset(p)
    assert e.value.line == 3


def test_a_lone_surrogate_is_a_row_problem_not_a_crash(tmp_path):
    from core.data import parse_dataset

    p = _lines(tmp_path / "s.jsonl", GOOD, '{"input_text": "a\\ud800", "output_text": "b"}',
               '{"input_text": "x", "output_text": "y", "\\udfff": 1}')
    with pytest.raises(DataError, match="lone surrogate") as e:  # in a key: the file cannot be read as a table
        parse_dataset(p)
    assert e.value.line == 3 and e.value.field == "\\udfff"
    p = _lines(tmp_path / "s.jsonl", GOOD, '{"input_text": "a\\ud800", "output_text": "b"}')
    data, problems = parse_dataset(p)
    assert len(data) == 1 and problems[0].line == 2 and problems[0].field == "input_text"
    assert "\\ud800" in str(problems[0])  # printable: the message itself can be printed and stored as UTF-8
    str(problems[0]).encode("utf-8")


@pytest.mark.parametrize("row,field", [
    ({"contents": [{"role": "user", "parts": None}]}, "contents[1].parts"),
    ({"contents": [{"role": "user", "parts": 7}]}, "contents[1].parts"),
    ({"contents": [{"role": "user", "parts": [{"text": 5}]}]}, "contents[1].parts[1].text"),
    ({"systemInstruction": {"parts": None}, "contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
     "systemInstruction.parts"),
    ({"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "x"}]}, "messages[1].content"),
])
def test_contents_parts_of_the_wrong_type_name_line_and_field(tmp_path, row, field):
    good = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}, {"role": "model", "parts": [{"text": "Yo"}]}]}
    if "messages" in row:
        good = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}
    p = _lines(tmp_path / "chat.jsonl", json.dumps(good), json.dumps(row))
    with pytest.raises(DataError) as e:
        load_dataset(p)
    assert e.value.line == 2 and e.value.field == field


def test_an_assistant_only_conversation_is_a_problem(tmp_path):
    p = _lines(tmp_path / "chat.jsonl", json.dumps({"messages": [{"role": "user", "content": "Hi"},
                                                                 {"role": "assistant", "content": "Yo"}]}),
               json.dumps({"messages": [{"role": "assistant", "content": "I talk to nobody"}]}),
               json.dumps({"messages": [{"role": "system", "content": "S"}, {"role": "assistant", "content": "A"}]}))
    from core.data import parse_dataset

    data, problems = parse_dataset(p)
    assert len(data) == 1 and [(e.line, e.field) for e in problems] == [(2, "messages"), (3, "messages")]
    assert "no user turn before the model's answer" in str(problems[0])


@pytest.mark.parametrize("content,line,reason", [
    ('input_text,output_text\na,b\n"c\nd",e\n"never closed,x\nf,g\n', 5, "never closed"),
    ('input_text,output_text\n"multi\nline",b\n\nc,d,EXTRA\n', 5, "3 fields but the header has 2"),
    ("input_text,output_text\na,b,c\nd,e,f\n", 2, "3 fields but the header has 2"),  # pandas would shift columns
])
def test_csv_errors_name_the_line_an_editor_shows(tmp_path, content, line, reason):
    p = tmp_path / "q.csv"
    p.write_text(content)
    with pytest.raises(DataError, match=reason) as e:
        load_dataset(p)
    assert e.value.line == line


def test_csv_rows_after_quoted_line_breaks_keep_their_editor_line(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text('input_text,output_text\n"two\nlines",a\n\nplain,\n')
    from core.data import parse_dataset

    data, problems = parse_dataset(p)
    assert data.examples[0]["line"] == 2 and problems[0].line == 5 and problems[0].field == "output_text"


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85"])
def test_unicode_line_separators_inside_a_json_string_are_text(tmp_path, sep):
    p = tmp_path / "sep.jsonl"
    row = json.dumps({"input_text": f"one{sep}two", "output_text": "b"}, ensure_ascii=False)
    p.write_text(row + "\n" + GOOD + "\n", encoding="utf-8")
    d = load_dataset(p)
    assert d.examples[0]["input_text"] == f"one{sep}two" and [e["line"] for e in d.examples] == [1, 2]


def test_parquet_chat_as_hugging_face_exports_it(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    msgs = [[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}] for i in range(3)]
    pq.write_table(pa.table({"messages": msgs}), tmp_path / "chat.parquet")  # list<struct<role, content>>
    d = load_dataset(tmp_path / "chat.parquet")
    assert d.format == "chat" and d.examples[2]["messages"][1] == {"role": "assistant", "content": "a2"}
    pd.DataFrame({"messages": msgs}).to_parquet(tmp_path / "pandas.parquet")  # the same through pandas
    assert load_dataset(tmp_path / "pandas.parquet").examples[0]["messages"] == d.examples[0]["messages"]


def test_pairs_without_a_choice_are_pairs_to_label(tmp_path):
    from core.data_formats import labeled_pairs

    path = _lines(tmp_path / "unlabeled.jsonl",
                  json.dumps({"input_text": "q1", "candidate_0": "a", "candidate_1": "b"}),
                  json.dumps({"input_text": "q2", "candidate_0": "c", "candidate_1": "d"}))
    data = load_dataset(path)  # no choice column: detected as pairs all the same
    assert data.format == "preference" and [e["answer_a"] for e in data.examples] == ["a", "c"]
    assert labeled_pairs(data.examples) == []
    mixed = _lines(tmp_path / "mixed.jsonl",
                   json.dumps({"input_text": "q1", "candidate_0": "a", "candidate_1": "b", "choice": None}),
                   json.dumps({"input_text": "q2", "candidate_0": "c", "candidate_1": "d", "choice": 1}))
    assert [e["chosen"] for e in labeled_pairs(load_dataset(mixed, format="preference").examples)] == ["d"]


def test_preference_choice_as_float_or_nullable_integer(tmp_path):
    from core.data import parse_dataset

    base = {"input_text": ["q1", "q2", "q3"], "candidate_0": ["a", "b", "c"], "candidate_1": ["A", "B", "C"]}
    pd.DataFrame({**base, "choice": [0.0, 1.0, 1.0]}).to_parquet(tmp_path / "f.parquet")
    assert [e["chosen"] for e in load_dataset(tmp_path / "f.parquet").examples] == ["a", "B", "C"]
    pd.DataFrame({**base, "choice": pd.array([1, None, 0], dtype="Int64")}).to_parquet(tmp_path / "n.parquet")
    data, problems = parse_dataset(tmp_path / "n.parquet")
    assert [e["chosen"] for e in data.examples] == ["A", None, "c"] and not problems  # empty: to be labeled
    assert (data.examples[1]["answer_a"], data.examples[1]["answer_b"]) == ("b", "B")
    j = _lines(tmp_path / "p.jsonl", json.dumps({"input_text": "q", "candidate_0": "a", "candidate_1": "b",
                                                 "choice": 1.0}))
    assert load_dataset(j).examples[0]["chosen"] == "b"


def test_numbers_and_booleans_are_read_as_text_with_a_warning(tmp_path):
    from core.data import parse_dataset

    p = _lines(tmp_path / "t.jsonl", GOOD, json.dumps({"input_text": "a", "output_text": 12345}),
               json.dumps({"input_text": True, "output_text": "b"}), json.dumps({"input_text": "c", "output_text": 7}))
    data, problems = parse_dataset(p)
    assert not problems and [e["output_text"] for e in data.examples] == ["b", "12345", "b", "7"]
    warned = {(w.line, w.field): str(w) for w in data.warnings}
    assert set(warned) == {(2, "output_text"), (3, "input_text")}
    assert "is a number (12345), read as the text" in warned[2, "output_text"] and "1 more" in warned[2, "output_text"]


@pytest.mark.parametrize("value,expect", [("Infinity", "is a number (inf), expected text"),
                                          ("-Infinity", "is a number (-inf), expected text"),
                                          ('["a", "b"]', "must be text, got list"),
                                          ('{"a": 1}', "must be text, got dict")])
def test_values_that_are_not_text_are_row_problems(tmp_path, value, expect):
    p = _lines(tmp_path / "t.jsonl", GOOD, '{"input_text": "a", "output_text": ' + value + "}")
    with pytest.raises(DataError, match=re.escape(expect)) as e:
        load_dataset(p)
    assert (e.value.line, e.value.field) == (2, "output_text")


def test_a_parquet_list_column_is_not_stringified(tmp_path):
    pd.DataFrame({"input_text": ["a", "b"], "output_text": [["x", "y"], ["z"]]}).to_parquet(tmp_path / "l.parquet")
    with pytest.raises(DataError, match="line 1, field `output_text`: must be text, got list"):
        load_dataset(tmp_path / "l.parquet")


def test_a_key_given_twice_is_a_warning(tmp_path):
    from core.data import parse_dataset

    p = _lines(tmp_path / "k.jsonl", GOOD, '{"input_text": "a", "output_text": "b", "output_text": "c"}')
    data, problems = parse_dataset(p)
    assert not problems and data.examples[1]["output_text"] == "c"
    assert [(w.line, w.field, w.kind) for w in data.warnings] == [(2, "output_text", "key given twice")]


@pytest.mark.parametrize("content", [b"\x1f\x8b\x08\x00", b"not gzip at all",
                                     b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 40])
def test_broken_gzip_is_a_data_error(tmp_path, content):
    p = tmp_path / "d.jsonl.gz"
    p.write_bytes(content)
    with pytest.raises(DataError, match="not a valid gzip file"):
        load_dataset(p)


def test_json_array_items_are_located(tmp_path):
    p = tmp_path / "a.json"
    p.write_text("[\n" + GOOD + ",\n" + GOOD + ",\n  7\n]\n")
    with pytest.raises(DataError, match="item 3 of the JSON array is not an object") as e:
        load_dataset(p)
    assert e.value.line == 4
    p.write_text("[\n" + GOOD + ",\n" + '{"input_text": "a" "output_text": "b"}\n]\n')
    with pytest.raises(DataError, match="item 2 of the JSON array: invalid JSON") as e:
        load_dataset(p)
    assert e.value.line == 3


def test_data_errors_survive_pickling_with_their_parts():
    import pickle

    e = pickle.loads(pickle.dumps(DataError("is wrong", file="x.jsonl", line=3, field="f", hint="Fix it.", kind="k")))
    assert (e.line, e.field, e.hint, e.kind) == (3, "f", "Fix it.", "k")
    assert str(e) == "x.jsonl, line 3, field `f`: is wrong Fix it."
