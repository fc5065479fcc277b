"""Every studio page renders without an exception and shows what a user needs, through the real
navigation in studio/app.py. No model is loaded: runs and evaluations are written by hand in the real
formats (core.runs, core.evaluate.task_metrics)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import open_page

from core import runs
from core.config import TuneConfig
from core.evaluate import parse_label, task_metrics
from core.templates import default_template

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "classification_train.jsonl"
LABELS = ["games", "mail", "science"]




def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def finished_run(ws: Path, task: str = "classification") -> Path:
    cfg = TuneConfig(task=task, train_file=str(SAMPLE), template=default_template(task, LABELS), labels=LABELS,
                     max_iterations=4, eval_every=2, input_column="input_text", output_column="output_text")
    run_dir = runs.create_run(ws, cfg.to_dict(), name="demo run")
    for step, loss in enumerate([3.2, 2.5, 1.9, 1.6], start=1):
        runs.append_metrics(run_dir, {"step": step, "loss": loss, "learning_rate": 2e-4, "tokens_per_s": 120.0,
                                      "mean_token_accuracy": 0.5})
        if step % 2 == 0:
            runs.append_metrics(run_dir, {"step": step, "eval_loss": loss + 0.2})
    runs.update_status(run_dir, state="succeeded", step=4, max_steps=4, device="CPU (2 cores)", precision="fp32",
                       train_rows=360, eval_rows=40, elapsed_s=12.0, phase="done")
    (run_dir / "adapter").mkdir()
    return run_dir


def write_evaluation(out_dir: Path, task: str, run_id: str | None) -> None:
    """metrics.json + predictions.jsonl as `studio evaluate` writes them, from hand-made answers."""
    if task == "classification":
        refs = ["games", "mail", "science", "games", "mail", "science"]
        answers = {"base": ["games", "games", "I think science", "mail", "nonsense", "science"],
                   "tuned": ["games", "mail", "science", "games", "mail", "games"]}
    else:
        refs = ["fast image library", "mail client for the terminal", "plotting tool"]
        answers = {"base": ["an image library", "a client", "a tool for plots"],
                   "tuned": ["fast image processing library", "terminal mail client", "plotting tool"]}
    if not run_id:
        answers.pop("tuned")
    out_dir.mkdir(parents=True)
    result = {name: task_metrics(task, refs, a, LABELS) for name, a in answers.items()}
    runs.write_json(out_dir / "metrics.json", {"task": task, "data": str(SAMPLE), "rows": len(refs),
                                               "template": default_template(task, LABELS), "model": "tiny",
                                               "run_id": run_id, "created": runs.now_iso(), **result})
    with open(out_dir / "predictions.jsonl", "w", encoding="utf-8") as f:
        for i, ref in enumerate(refs):
            row = {"line": i + 1, "input_text": f"description {i}", "reference": ref}
            for name, a in answers.items():
                row[name] = a[i]
                if task == "classification":
                    row[f"{name}_label"] = parse_label(a[i], LABELS)
            f.write(json.dumps(row) + "\n")
    runs.write_json(out_dir / "status.json", {"state": "succeeded", "done": 2 * len(refs), "total": 2 * len(refs)})


def test_navigation_shows_all_pages_and_workspace(ws):
    at = AppTest.from_file(str(ROOT / "studio" / "app.py"), default_timeout=30)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Datasets"  # the default page
    assert any(str(ws) in c.value for c in at.sidebar.caption)


def test_datasets_page_sample_and_upload(ws):
    at = open_page("datasets")
    assert at.title[0].value == "Datasets"
    assert [b.label for b in at.button].count("Use sample") == 2
    at.button(key="use_classification_train.jsonl").click().run()
    assert not at.exception
    assert "400 examples" in at.success[0].value
    assert [t["type"] for s in chart_specs(at) for t in s["data"]] == ["bar"]  # the label distribution
    assert any(b.label == "Load the tokenizer and run the pre-flight" for b in at.button)  # none loaded here
    assert at.dataframe

    # An upload with a hostile name lands inside <workspace>/datasets under a sanitized name.
    rows = "".join(json.dumps({"prompt": f"text {i}", "label": LABELS[i % 3]}) + "\n" for i in range(12))
    at.file_uploader[0].set_value(("../../evil name!.jsonl", rows.encode(), "application/json")).run()
    assert not at.exception
    assert sorted(p.name for p in (ws / "datasets").iterdir()) == ["evil_name.jsonl"]
    assert any("12 examples" in s.value for s in at.success)


def test_datasets_page_shows_data_error_with_line(ws):
    (ws / "datasets").mkdir()
    (ws / "datasets" / "broken.jsonl").write_text('{"input_text": "a", "output_text": "b"}\n{oops\n')
    at = open_page("datasets")
    at.selectbox(key="ds_pick").set_value(str(ws / "datasets" / "broken.jsonl")).run()
    assert not at.exception
    assert "line 2" in at.error[0].value and "broken.jsonl" in at.error[0].value


def test_datasets_page_maps_unrecognised_columns(ws):
    (ws / "datasets").mkdir()
    body = "id,question,answer\n" + "".join(f"{i},text number {i},{LABELS[i % 3]}\n" for i in range(12))
    (ws / "datasets" / "odd.csv").write_text(body)
    at = open_page("datasets")
    at.selectbox(key="ds_pick").set_value(str(ws / "datasets" / "odd.csv")).run()
    assert not at.exception and not at.error
    at.selectbox(key="ds_map_in").set_value("question").run()
    at.selectbox(key="ds_map_out").set_value("answer").run()
    assert not at.exception
    assert "12 examples" in at.success[0].value and "`question`" in at.success[0].value


def test_tune_page_shows_run_and_loss_curve(ws):
    run_dir = finished_run(ws)
    at = open_page("tune")
    assert at.title[0].value == "Tune"
    assert any(b.label == "Start tuning" for b in at.button)
    steps = next(n for n in at.number_input if n.label == "Steps (max_iterations)")
    assert steps.value == 50  # recommend_steps: one pass over 400 rows at batch 8
    specs = chart_specs(at)
    assert len(specs) == 1
    names = [t["name"] for t in specs[0]["data"]]
    assert names == ["Train loss", "Eval loss"]
    assert any(m.label == "Train loss" and m.value == "1.6000" for m in at.metric)
    assert any("adapter is saved" in s.value for s in at.success)
    assert run_dir.name in at.selectbox(key="tune_run_pick").value


def test_tune_page_explains_a_failed_run(ws):
    run_dir = finished_run(ws)
    runs.update_status(run_dir, state="failed", error="OutOfMemoryError: CUDA out of memory",
                       hint="Out of memory: lower the batch size.")
    (run_dir / "worker.log").write_text("loading\nTraceback (most recent call last):\nOutOfMemoryError\n")
    at = open_page("tune")
    assert "CUDA out of memory" in at.error[0].value
    assert any("lower the batch size" in i.value for i in at.info)
    assert any("OutOfMemoryError" in c.value for c in at.code)  # the log tail


def test_tune_page_config_error_starts_nothing(ws):
    at = open_page("tune")
    area = next(t for t in at.text_area if t.key.startswith("tune_template"))
    area.set_value("no placeholder here").run()
    next(b for b in at.button if b.label == "Start tuning").click().run()
    assert not at.exception
    assert "{input_text}" in at.error[0].value
    assert runs.list_runs(ws) == []


def test_playground_page_renders_without_loading_a_model(ws):
    run_dir = finished_run(ws)
    at = open_page("playground")
    assert at.title[0].value == "Playground"
    assert any(b.label == "Generate" for b in at.button)
    assert at.toggle[0].label == "Show the rendered prompt"
    at.selectbox(key="pg_run").set_value(run_dir.name).run()
    assert not at.exception
    assert any(b.label == "Try an example from the run's data" for b in at.button)


def test_evaluate_page_classification_dashboard(ws):
    run_dir = finished_run(ws)
    write_evaluation(run_dir / "evals" / "cls-1", "classification", run_dir.name)
    at = open_page("evaluate")
    assert at.title[0].value == "Evaluate"
    assert any(b.label == "Run evaluation" for b in at.button)
    specs = chart_specs(at)
    heat = specs[0]["data"]
    assert [t["type"] for t in heat] == ["heatmap", "heatmap"]  # per-class F1 + diverging delta
    assert heat[0]["x"] == ["Base", "Tuned"] and heat[1]["zmid"] == 0
    assert heat[0]["y"] == LABELS
    assert any(s["data"][0].get("hovertemplate", "").startswith("true") for s in specs)  # confusion matrix
    acc = next(m for m in at.metric if m.label == "Accuracy")
    # 5/6 tuned vs 2/6 base: "I think science" is a sentence, not the label `science`
    assert acc.value == "83.3%" and acc.delta.startswith("+50.0")
    assert len(at.dataframe) == 2  # per-label table + predictions


def test_evaluate_page_shows_no_change_as_neutral(ws):
    run_dir = finished_run(ws)
    out = run_dir / "evals" / "cls-same"
    write_evaluation(out, "classification", run_dir.name)
    metrics = runs.read_json(out / "metrics.json")
    runs.write_json(out / "metrics.json", {**metrics, "tuned": metrics["base"]})  # tuning changed nothing
    at = open_page("evaluate")
    acc = next(m for m in at.metric if m.label == "Accuracy")
    assert acc.delta == "no change" and acc.color != 1  # not a green up-arrow
    assert "+0.0" not in " ".join(m.delta or "" for m in at.metric)


def test_evaluate_page_summarization_base_only(ws):
    write_evaluation(ws / "evals" / "sum-1", "summarization", None)
    at = open_page("evaluate")
    assert not at.exception
    specs = chart_specs(at)
    assert [t["name"] for t in specs[0]["data"]] == ["Base"]
    assert any(m.label == "ROUGE-1 F1" for m in at.metric)


def test_evaluate_page_reports_a_job_that_died(ws):
    out_dir = ws / "evals" / "dead-1"
    out_dir.mkdir(parents=True)
    # What `studio evaluate` leaves when it exits early: status still queued, its pid gone, an error line.
    runs.write_json(out_dir / "status.json", {"state": "queued", "done": 0, "pid": 2**22 + 12345,
                                              "heartbeat_ts": 0})
    (out_dir / "worker.log").write_text("error: x.jsonl: file not found\n")
    at = open_page("evaluate")
    assert not at.exception
    assert "file not found" in at.error[0].value


def test_safe_filename():
    from core.inventory import safe_filename

    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("..\\evil.JSONL") == "evil.jsonl"
    assert safe_filename(".hidden.csv") == "hidden.csv"
    assert safe_filename("my data (v2).jsonl") == "my_data_v2.jsonl"
    assert safe_filename("...") == "dataset"


# ---------------------------------------------------------------- Datasets: check, pre-flight, splits, catalog

def write_rows(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def labelled_rows(n: int) -> list[dict]:
    return [{"input_text": f"package number {i} does things", "output_text": LABELS[i % 3]} for i in range(n)]


def inspect(ws: Path, path: Path) -> AppTest:
    at = open_page("datasets")
    at.selectbox(key="ds_pick").set_value(str(path)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def bundled_tokenizer(bundled_dir, monkeypatch):
    """The real bundled tokenizer, handed to the page without converting anything inside AppTest."""
    from core.models import load_tokenizer
    from studio import cached

    tok = load_tokenizer(str(bundled_dir))
    monkeypatch.setattr(cached, "load_tokenizer", lambda model: tok)
    monkeypatch.setattr(cached, "tokenizer_ready", lambda model: True)
    return tok


def test_datasets_page_groups_problems_with_lines(ws):
    rows = labelled_rows(20)
    for i in (2, 6):  # file lines 3 and 7
        del rows[i]["output_text"]
    path = write_rows(ws / "datasets" / "gaps.jsonl", rows)
    at = inspect(ws, path)
    assert "18 of 20 rows" in at.success[0].value
    group = next(e for e in at.expander if "output_text" in e.label)
    assert group.label.endswith("·  2")
    table = group.dataframe[0].value
    assert list(table["line"]) == [3, 7] and set(table["field"]) == {"output_text"}
    assert any(b.label == "Download all problems (CSV)" for b in at.get("download_button"))
    assert at.button(key=f"ds_register::{path}").disabled  # bad rows are never dropped silently
    assert at.checkbox(key=f"ds_fix::{path}::drop_invalid").value  # shown, ticked, not hidden
    at.button(key=f"ds_fixsave::{path}").click().run()  # a copy without the two bad rows
    assert not at.exception, [e.value for e in at.exception]
    from core.catalog import list_datasets
    assert list_datasets(ws)["gaps-fixed"]["rows"] == 18


def test_datasets_page_shows_chat_as_bubbles(ws):
    chats = [{"messages": [{"role": "system", "content": "Be brief."},
                           {"role": "user", "content": f"What is package {i}?"},
                           {"role": "model", "content": f"A tool, number {i}."}]} for i in range(12)]
    at = inspect(ws, write_rows(ws / "datasets" / "chats.jsonl", chats))
    assert "12 examples" in at.success[0].value and "`messages`" in at.success[0].value
    bubbles = at.chat_message
    assert [b.name for b in bubbles[:3]] == ["system", "user", "assistant"]
    assert bubbles[2].text[0].value == "A tool, number 0."
    assert any("Chat conversations" in m.value for m in at.markdown)  # the format badge


def test_datasets_page_preflight_marks_loss_and_truncation(ws, bundled_tokenizer):
    rows = labelled_rows(12)
    rows[0]["input_text"] = "uses <b>bold</b> & <script>x</script>"
    rows.append({"input_text": "a tool", "output_text": " ".join(["very long answer"] * 80)})  # line 13
    path = write_rows(ws / "datasets" / "long.jsonl", rows)
    at = inspect(ws, path)
    at.selectbox(key=f"ds_task::{path}::prompt_answer").set_value("summarization").run()
    at.selectbox(key="ds_maxlen").set_value(128).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("tokens the model learns to produce (loss)" in m.value for m in at.markdown)
    cut = next(m for m in at.metric if m.label == "Cut by max length")
    assert cut.value == "1"
    assert any("lines 13" in m.value for m in at.markdown)
    shown = [h.proto.body for h in at.get("html")]
    assert shown and "&lt;b&gt;bold&lt;/b&gt;" in shown[0] and "<script>" not in shown[0]
    assert "background" in shown[0] and "white-space:pre-wrap" in shown[0]
    specs = chart_specs(at)
    assert any(s["layout"].get("shapes") and s["layout"]["shapes"][0]["x0"] == 128 for s in specs)  # max length line


def test_datasets_page_registers_and_deletes(ws):
    from core.catalog import list_datasets

    path = write_rows(ws / "datasets" / "sections.jsonl", labelled_rows(30))
    at = inspect(ws, path)
    at.text_input(key=f"ds_regname::{path}").set_value("bad name!").run()
    at.button(key=f"ds_register::{path}").click().run()
    assert not at.exception and "is not a valid name" in at.error[0].value
    at.text_input(key=f"ds_regname::{path}").set_value("sections-v1").run()
    at.selectbox(key=f"ds_split::{path}").set_value("RANDOM").run()
    at.button(key=f"ds_register::{path}").click().run()
    assert not at.exception
    entry = list_datasets(ws)["sections-v1"]
    assert entry["rows"] == 30 and entry["split"] == "RANDOM" and entry["train_rows"] + entry["eval_rows"] == 30
    assert any("Registered **sections-v1**" in s.value for s in at.success)
    at.run()
    assert any(m.value == "**sections-v1**" for m in at.markdown)  # the registered list

    tune = open_page("tune")
    assert any(o.startswith("sections-v1  ·  registered") for o in tune.selectbox(key="tune_train").options)

    at.button(key="ds_del::sections-v1").click().run()
    assert list_datasets(ws)  # asks first
    at.button(key="ds_delok::sections-v1").click().run()
    assert not at.exception and list_datasets(ws) == {}


def test_datasets_page_registers_with_the_eval_file(ws):
    from core.catalog import list_datasets

    at = open_page("datasets")
    at.button(key="use_classification_train.jsonl").click().run()
    assert any("none of them also in the training data" in m.value for m in at.markdown)  # overlap checked
    path = str(SAMPLE)
    at.text_input(key=f"ds_regname::{path}").set_value("sections").run()
    at.button(key=f"ds_register::{path}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    entry = list_datasets(ws)["sections"]
    assert (entry["train_rows"], entry["eval_rows"]) == (400, 102)
    at.button(key="ds_open::sections").click().run()
    assert at.selectbox(key="ds_pick").value == entry["train_file"]
    assert at.selectbox(key=f"ds_eval::{entry['train_file']}").value == entry["eval_file"]


def test_datasets_page_fixed_copy_drops_duplicates(ws):
    from core.catalog import list_datasets

    rows = labelled_rows(12)
    path = write_rows(ws / "datasets" / "dups.jsonl", rows + rows[:3])
    before = path.read_bytes()
    at = inspect(ws, path)
    assert at.button(key=f"ds_fixsave::{path}").disabled  # nothing is applied unless ticked
    at.checkbox(key=f"ds_fix::{path}::drop_duplicates").check().run()
    assert at.text_input(key=f"ds_fixname::{path}").value == "dups-fixed"
    at.button(key=f"ds_fixsave::{path}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    entry = list_datasets(ws)["dups-fixed"]
    assert entry["rows"] == 12 and entry["train_rows"] == 12
    assert path.read_bytes() == before


def test_datasets_page_empty_and_header_only_files(ws):
    (ws / "datasets").mkdir()
    (ws / "datasets" / "empty.jsonl").write_text("")
    (ws / "datasets" / "header.csv").write_text("input_text,output_text\n")
    at = open_page("datasets")
    for name, words in (("empty.jsonl", "empty"), ("header.csv", "header but no rows")):
        at.selectbox(key="ds_pick").set_value(str(ws / "datasets" / name)).run()
        assert not at.exception, [e.value for e in at.exception]
        assert name in at.error[0].value and words in at.error[0].value


def test_datasets_page_accepts_gzipped_upload(ws):
    import gzip

    at = open_page("datasets")
    body = gzip.compress("".join(json.dumps(r) + "\n" for r in labelled_rows(15)).encode())
    at.file_uploader[0].set_value(("Sections.JSONL.gz", body, "application/gzip")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert (ws / "datasets" / "Sections.JSONL.gz").exists()
    assert any("15 examples" in s.value for s in at.success)


def test_pickers_list_registered_sets_first_and_hide_broken_uploads(ws):
    from core.catalog import register_dataset
    from core.inventory import save_upload

    save_upload(ws, "broken.jsonl", b'{"input_text": "x"\n')
    register_dataset(ws, SAMPLE, "sections")
    at = open_page("tune")
    options = at.selectbox(key="tune_train").options
    assert options[0].startswith("sections") and not any("broken.jsonl" in o for o in options)
    assert any("1 uploaded file with problems not listed (broken.jsonl)" in c.value for c in at.caption)
    at = open_page("datasets")  # where problems are shown, every file is listed
    assert any("broken.jsonl" in o for o in at.selectbox(key="ds_pick").options)
