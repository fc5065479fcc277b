"""core.inventory: where uploads go, which datasets a workspace lists, and the small guesses about a file."""
from __future__ import annotations

import pytest

from conftest import write_jsonl
from core.catalog import register_dataset
from core.data import DataError, Dataset
from core.inventory import (SAMPLES_DIR, dataset_name, guess_task, list_datasets, looks_like_labels, safe_filename,
                            save_upload, sibling_eval, uploads_dir)

BODY = b'{"input_text": "a", "output_text": "b"}\n'


def rows(n, labels=("games", "mail", "science")):
    return [{"input_text": f"package {i} does things", "output_text": labels[i % len(labels)]} for i in range(n)]


def dataset(examples, format="prompt_answer"):
    return Dataset(path=SAMPLES_DIR / "x.jsonl", examples=examples, input_column="input_text",
                   output_column="output_text", format=format)


def test_save_upload_keeps_hostile_names_inside_the_uploads_folder(tmp_path):
    for name, stored in (("../../x.jsonl", "x.jsonl"), ("..\\..\\y.JSONL", "y.jsonl"), (".hidden.csv", "hidden.csv"),
                         ("/etc/z.tsv", "z.tsv"), ("my data.jsonl.gz", "my_data.jsonl.gz")):
        path = save_upload(tmp_path / "ws", name, BODY)
        assert path == (uploads_dir(tmp_path / "ws") / stored).resolve() and path.read_bytes() == BODY
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        ["x.jsonl", "y.jsonl", "hidden.csv", "z.tsv", "my_data.jsonl.gz"])  # nothing outside, no temp file left


@pytest.mark.parametrize("name", ["notes.txt", "data.exe", "archive.gz", "noext", "../../.bashrc"])
def test_save_upload_refuses_unsupported_types(tmp_path, name):
    with pytest.raises(DataError, match="unsupported file type") as e:
        save_upload(tmp_path / "ws", name, BODY)
    assert e.value.hint and not any(p.is_file() for p in tmp_path.rglob("*"))


def test_safe_filename():
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename(".hidden.csv") == "hidden.csv"
    assert safe_filename("...") == "dataset"


def test_save_upload_leaves_an_identical_file_alone(tmp_path):
    path = save_upload(tmp_path, "d.jsonl", BODY)
    before = path.stat().st_mtime_ns
    assert save_upload(tmp_path, "d.jsonl", BODY) == path and path.stat().st_mtime_ns == before
    save_upload(tmp_path, "d.jsonl", BODY * 2)
    assert path.read_bytes() == BODY * 2


def test_list_datasets_shows_samples_uploads_and_registered_files(tmp_path):
    ws = tmp_path / "ws"
    items = list_datasets(ws)  # a fresh workspace: the samples only, and no folder is created
    assert {d["name"] for d in items} >= {"classification_train.jsonl", "summarization_eval.jsonl"}
    assert {d["source"] for d in items} == {"sample"} and not ws.exists()

    save_upload(ws, "mine.jsonl", b"".join(BODY for _ in range(3)))
    (uploads_dir(ws) / ".partial.jsonl").write_bytes(BODY)  # hidden (an upload being written): not listed
    (uploads_dir(ws) / "notes.txt").write_text("not data")
    src = write_jsonl(tmp_path / "src.jsonl", rows(600))
    entry = register_dataset(ws, src, "sections", "RANDOM", 0.2)
    items = list_datasets(ws)
    by_source = {s: [(d["name"], d["path"]) for d in items if d["source"] == s] for s in ("uploaded", "registered")}
    assert by_source["uploaded"] == [("mine.jsonl", str(uploads_dir(ws) / "mine.jsonl"))]
    assert by_source["registered"] == [("sections", entry["train_file"]), ("sections (eval)", entry["eval_file"])]
    assert [d["source"] for d in items] == sorted((d["source"] for d in items),  # registered sets first
                                                 key=["registered", "sample", "uploaded"].index)


def test_sibling_eval(tmp_path):
    assert sibling_eval(SAMPLES_DIR / "classification_train.jsonl") == str(SAMPLES_DIR / "classification_eval.jsonl")
    (tmp_path / "sections").mkdir()
    (tmp_path / "sections" / "train.jsonl").write_bytes(BODY)
    assert sibling_eval(tmp_path / "sections" / "train.jsonl") is None  # no eval.jsonl beside it
    (tmp_path / "sections" / "eval.jsonl").write_bytes(BODY)
    assert sibling_eval(tmp_path / "sections" / "train.jsonl") == str(tmp_path / "sections" / "eval.jsonl")
    assert sibling_eval(tmp_path / "other.jsonl") is None and sibling_eval(None) is None


def test_dataset_name():
    assert dataset_name("/x/My Data (v2).jsonl.gz") == "My-Data-v2"
    assert dataset_name("/ws/catalog/sections/train.jsonl", "-fixed") == "sections-fixed"
    assert dataset_name("/x/...jsonl") == "dataset"


def test_guess_task():
    assert guess_task(dataset(rows(30))) == "classification" and looks_like_labels(dataset(rows(30)))
    free = [{"input_text": f"p {i}", "output_text": f"a summary number {i}"} for i in range(30)]
    assert guess_task(dataset(free)) == "summarization"
    assert guess_task(dataset(rows(30, labels=("same",)))) == "summarization"  # one answer is not classes
    assert guess_task(dataset(rows(4, labels=("a", "b", "c", "d")))) == "summarization"  # as many answers as rows
    chats = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}] * 12
    assert guess_task(dataset(chats, format="chat")) == "text_generation"


def test_a_small_file_of_section_names_is_classification_and_says_why():
    from core.data import Dataset
    from core.inventory import guess_task, task_reason

    sections = ["games", "mail", "science", "net", "web", "text", "math", "video", "sound", "admin"]
    rows = [{"input_text": f"package {i}", "output_text": sections[i % 10], "line": i + 2} for i in range(19)]
    ds = Dataset(path="s.csv", examples=rows, input_column="input_text", output_column="output_text",
                 format="prompt_answer")
    assert guess_task(ds) == "classification"  # 10 labels in 19 rows: short answers that repeat
    assert "19 answers take only 10 distinct values" in task_reason(ds)
    free = [{"input_text": f"p{i}", "output_text": f"a long answer number {i} in words", "line": i} for i in range(19)]
    ds_free = Dataset(path="f.csv", examples=free, input_column="input_text", output_column="output_text",
                      format="prompt_answer")
    assert guess_task(ds_free) == "summarization" and "free text" in task_reason(ds_free)
