"""The pre-flight report: every problem grouped with file/line/field, safe fixes, overlap, tokens."""
import json

import pytest

from conftest import SHARED_DATA, write_jsonl
from core.cli import main
from core.data import load_dataset
from core.datacheck import apply_fixes, check_dataset, loss_segments, token_preflight


def rows(n=30):
    return [{"input_text": f"text number {i}", "output_text": ["a", "b", "c"][i % 3]} for i in range(n)]


def test_problems_are_grouped_counted_and_located(tmp_path):
    data = rows()
    del data[4]["output_text"]
    del data[9]["output_text"]
    data[6]["input_text"] = "   "
    data[12]["output_text"] = " a "
    data.append(dict(data[1]))  # duplicate of line 2
    data.append({"input_text": data[2]["input_text"], "output_text": "b"})  # same prompt, other answer
    r = check_dataset(write_jsonl(tmp_path / "d.jsonl", data), task="classification")
    groups = {g["kind"]: g for g in r["groups"]}
    missing = groups["`output_text` is missing; every example needs one"]
    assert missing["count"] == 2 and [p["line"] for p in missing["first"]] == [5, 10]
    assert "d.jsonl, line 5, field `output_text`" in missing["first"][0]["message"]
    assert groups["`input_text` is empty; every example needs text here"]["first"][0]["line"] == 7
    assert groups["leading or trailing whitespace"]["first"][0]["line"] == 13
    assert groups["duplicate example"]["first"][0]["line"] == 31
    assert groups["same prompt, different answers"]["count"] == 1
    assert r["groups"][0]["level"] == "error"  # errors first
    assert r["rows"] == 32 and r["valid_rows"] == 29 and r["usable"]
    assert {f["fix"] for f in r["fixes"]} == {"drop_invalid", "strip", "drop_duplicates"}


def test_safe_fixes_never_touch_the_source(tmp_path):
    data = rows(12) + [{"input_text": "text number 0 ", "output_text": "a"}]
    path = write_jsonl(tmp_path / "d.jsonl", data)
    before = path.read_bytes()
    fixed = apply_fixes(load_dataset(path), ["strip", "drop_duplicates"])
    assert len(fixed) == 12 and path.read_bytes() == before


@pytest.mark.parametrize("content,kind", [
    (b"", "file cannot be used"),
    (b"input_text,output_text\n", "file cannot be used"),
    (b'{"a": 1}\n{"b": ', "file cannot be used"),
])
def test_unusable_files_say_why(tmp_path, content, kind):
    p = tmp_path / ("d.csv" if content.startswith(b"input") else "d.jsonl")
    p.write_bytes(content)
    r = check_dataset(p)
    assert not r["usable"] and r["groups"][0]["kind"] == kind and r["problems"][0]["message"]


def test_too_few_examples_and_rare_classes(tmp_path):
    r = check_dataset(write_jsonl(tmp_path / "few.jsonl", rows(6)), task="classification")
    assert not r["usable"] and any(g["kind"] == "too few examples" for g in r["groups"])
    data = rows(60) + [{"input_text": "lonely", "output_text": "z"}]
    r = check_dataset(write_jsonl(tmp_path / "rare.jsonl", data), task="classification")
    rare = next(g for g in r["groups"] if g["kind"] == "rare class")
    assert "`z` has only 1 example" in rare["first"][0]["message"]


def test_train_eval_overlap(tmp_path):
    train = write_jsonl(tmp_path / "t.jsonl", rows(20))
    ev = write_jsonl(tmp_path / "e.jsonl", rows(20)[15:] + [{"input_text": "new", "output_text": "a"}])
    r = check_dataset(train, eval_path=ev)
    assert r["stats"]["train_eval_overlap"] == 5 and r["stats"]["eval_rows"] == 6


def test_loss_marks_only_the_answer(tiny_model_dir, tmp_path):
    from core.models import load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir))
    segs = loss_segments(tok, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "games<|im_end|>")
    assert [s["loss"] for s in segs] == [False, True]
    assert segs[1]["text"] == "games<|im_end|>" and segs[0]["text"].endswith("assistant\n")
    data = load_dataset(write_jsonl(tmp_path / "d.jsonl", rows(12) + [{"input_text": "word " * 300, "output_text": "a"}]))
    pre = token_preflight(data, tok, "Classify: {input_text}", max_length=64)
    assert pre["dropped_lines"] == [13] and pre["truncated_lines"] == []
    assert len(pre["prompt_tokens"]) == 13 and pre["examples"][0]["segments"][-1]["loss"]


def test_cli_data_check_and_add(workspace, tmp_path, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", rows(5))
    assert main(["data", "check", str(bad), "--json"]) == 1
    assert not json.loads(capsys.readouterr().out)["usable"]
    good = write_jsonl(tmp_path / "good.jsonl", rows(40))
    assert main(["data", "check", str(good), "--task", "classification"]) == 0
    assert "ready for tuning" in capsys.readouterr().out
    assert main(["data", "add", str(good), "--name", "abc", "--split", "random", "--eval-fraction", "0.25",
                 "--json", "--workspace", str(workspace)]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert entry["train_rows"] + entry["eval_rows"] == 40 and entry["eval_rows"] > 0
    assert load_dataset(entry["train_file"]).examples[0]["output_text"] in "abc"
    assert main(["data", "add", str(good), "--name", "../evil", "--workspace", str(workspace)]) == 2


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="shared data not present")
def test_real_debian_sets_check_clean_and_do_not_overlap():
    r = check_dataset(SHARED_DATA / "debian_classification_train.jsonl", task="classification",
                      eval_path=SHARED_DATA / "debian_classification_eval.jsonl")
    assert r["usable"] and r["valid_rows"] == 5258 and len(r["stats"]["labels"]) == 17
    assert r["stats"]["train_eval_overlap"] <= 5  # split by source package; a few descriptions repeat


def test_a_50_mb_file_is_checked_in_seconds(tmp_path):
    import time

    path = tmp_path / "big.jsonl"
    line = json.dumps({"input_text": "word " * 150 + "end", "output_text": "a"})
    with open(path, "w") as f:
        i = 0
        while f.tell() < 50 * 2 ** 20:
            f.write(line.replace("word", f"w{i}", 1) + "\n")
            i += 1
    assert path.stat().st_size >= 50 * 2 ** 20
    start = time.time()
    r = check_dataset(path, task="classification")
    assert r["usable"] and r["valid_rows"] > 60_000 and not r["problems"]
    assert time.time() - start < 30


def test_values_of_the_wrong_type_are_listed_with_line_and_field(tmp_path):
    data = rows(30)
    data[3]["output_text"] = 12345
    data[5]["output_text"] = float("inf")  # json.dumps writes Infinity
    data[7]["input_text"] = ["a", "b"]
    data[9] = {"note": "not here"}  # a row of another shape: its fields are missing
    r = check_dataset(write_jsonl(tmp_path / "t.jsonl", data), task="classification")
    where = {(p["line"], p["field"]): p for p in r["problems"]}
    assert where[4, "output_text"]["level"] == "warning" and "is a number (12345)" in where[4, "output_text"]["message"]
    assert where[6, "output_text"]["level"] == "error" and "expected text" in where[6, "output_text"]["message"]
    assert where[8, "input_text"]["level"] == "error" and where[10, "input_text"]["level"] == "error"
    assert r["valid_rows"] == 27 and r["usable"]
    assert {g["kind"] for g in r["groups"]} >= {"`output_text` holds numbers, read as text",
                                                "`output_text` is a number that is not finite"}


def test_an_assistant_only_conversation_shows_in_the_report(tmp_path):
    convo = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    data = [convo] * 11 + [{"messages": [{"role": "assistant", "content": "Hello"}]}]
    r = check_dataset(write_jsonl(tmp_path / "c.jsonl", data))
    bad = [p for p in r["problems"] if p["level"] == "error"]
    assert [(p["line"], p["field"]) for p in bad] == [(12, "messages")] and r["valid_rows"] == 11


def test_a_file_that_cannot_be_read_reports_its_error(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps(rows(1)[0]) + "\n" + '{"input_text": ' + "[" * 50_000 + "\n")
    r = check_dataset(p)
    assert not r["usable"] and r["error"]["line"] == 2 and r["error"]["file"] == str(p)
    assert r["groups"][0]["kind"] == "file cannot be used" and "nested too deeply" in r["error"]["message"]


def test_cli_data_check_reports_a_broken_file_and_exits_1(tmp_path, capsys):
    p = tmp_path / "q.csv"
    p.write_text('input_text,output_text\na,b\n"never closed,c\n')
    assert main(["data", "check", str(p), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["usable"] is False and out["error"]["line"] == 3 and out["error"]["file"] == str(p)
    assert "never closed" in out["error"]["message"]
    assert main(["data", "check", str(p)]) == 1
    text = capsys.readouterr().out
    assert "q.csv, line 3" in text and "NOT usable" in text
    s = tmp_path / "s.jsonl"  # a lone surrogate in a key: the report is still printable
    s.write_text('{"input_text": "a", "output_text": "b", "\\ud800": 1}\n')
    assert main(["data", "check", str(s), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"]["field"] == "\\ud800"


def test_cli_data_check_lets_a_bug_show(tmp_path, monkeypatch):
    import core.cli.data as cli_data

    def broken(*a, **k):
        raise KeyError("a bug, not a data problem")

    monkeypatch.setattr(cli_data, "check_dataset", broken)
    with pytest.raises(KeyError):
        main(["data", "check", str(write_jsonl(tmp_path / "d.jsonl", rows(20)))])


def test_eval_classes_absent_from_training_are_a_warning(tmp_path):
    import json as _json

    from core.datacheck import check_dataset

    train = tmp_path / "train.jsonl"
    train.write_text("".join(_json.dumps({"input_text": f"t{i}", "output_text": ["games", "mail"][i % 2]}) + "\n"
                             for i in range(20)))
    ev = tmp_path / "eval.jsonl"
    ev.write_text(_json.dumps({"input_text": "e1", "output_text": "games"}) + "\n"
                  + _json.dumps({"input_text": "e2", "output_text": "science"}) + "\n")
    report = check_dataset(train, task="classification", eval_path=ev)
    unseen = [p for p in report["problems"] if p["kind"] == "eval class absent from training"]
    assert len(unseen) == 1 and "`science`" in unseen[0]["message"] and unseen[0]["level"] == "warning"
    assert report["usable"]


def test_a_misnamed_answer_column_is_a_warning_that_says_what_to_do(tmp_path):
    from core.data import ANSWER_MISSING

    csv = tmp_path / "sections.csv"  # `label` misspelt: the prompt column is found, the answer column is not
    csv.write_text("text,section_name_typo\n" + "".join(f"package {i},{['games', 'mail'][i % 2]}\n" for i in range(12)))
    r = check_dataset(csv, format="unlabeled")  # what the Datasets page reads a detected prompts-only file as
    warning = next(g for g in r["groups"] if g["kind"] == ANSWER_MISSING)
    assert warning["level"] == "warning" and warning["count"] == 1
    message = warning["first"][0]["message"]
    assert message.startswith("sections.csv: ") and "`text`, `section_name_typo`" in message
    assert "looked for as `label` (beside `text`)" in message  # the name detection pairs with `text`
    assert "If `section_name_typo` holds the answers, rename it to `label`" in warning["hint"]
    assert "*Prompt → answer*" in warning["hint"] and "--output-column section_name_typo" in warning["hint"]
    jsonl = write_jsonl(tmp_path / "pairs.jsonl", [{"input_text": f"q{i}", "response": f"answer {i}"} for i in range(12)])
    hint = next(g for g in check_dataset(jsonl, format="unlabeled")["groups"] if g["kind"] == ANSWER_MISSING)["hint"]
    assert "rename it to `output_text`" in hint
    labels = write_jsonl(tmp_path / "ids.jsonl", [{"prompt": f"q{i}", "sentiment": i % 2} for i in range(12)])
    hint = next(g for g in check_dataset(labels, format="unlabeled")["groups"] if g["kind"] == ANSWER_MISSING)["hint"]
    assert "`sentiment`" in hint and "`label`" in hint  # numbers that repeat are class ids: answers


@pytest.mark.parametrize("rows", [
    [{"input_text": f"prompt {i}"} for i in range(12)],  # one column: a real set of prompts
    [{"id": i, "input_text": f"prompt {i}"} for i in range(12)],  # numbers that never repeat are ids, not answers
])
def test_a_real_prompts_only_file_gets_a_note_not_a_warning(tmp_path, rows):
    r = check_dataset(write_jsonl(tmp_path / "prompts.jsonl", rows), format="unlabeled")
    assert not r["problems"] and r["valid_rows"] == 12 and r["format"] == "unlabeled"
    note = next(n for n in r["notes"] if "no answer column" in n)
    assert note.startswith("prompts.jsonl has no answer column, so it is read as prompts only")
    assert "add the answers in a column named `output_text`" in note
    assert "no answer column" not in " ".join(g["kind"] for g in r["groups"])
