"""The Preferences page (blind labelling, review, import/export), the Evaluate page's regression browser
and the Playground's streaming and pair saving, through the real navigation; plus core.report. No model
is loaded: labels go in through core.preferences, evaluations are written by hand in the format
`studio evaluate` writes, and the Playground gets a stand-in model."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import open_page

from core import preferences, runs
from core.config import TuneConfig
from core.evaluate import row_change
from core.metrics import confidence_intervals, parse_label, row_scores, task_metrics
from core.report import comparison_html, word_diff_html
from core.templates import default_template

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["games", "mail", "science"]
ANSWERS_IN_LABELS = {"base": ["games", "games", "science", "mail", "games", "science"],
                     "tuned": ["games", "mail", "science", "games", "mail", "games"]}
REFS = ["games", "mail", "science", "games", "mail", "science"]
ANSWERS = {"base": ["games", "games", "I think science", "mail", "nonsense", "science"],
           "tuned": ["games", "mail", "science", "games", "mail", "games"]}  # rows 2, 4, 5 fixed; row 6 broken




def as_labeler(name: str) -> AppTest:
    at = open_page("preferences")
    at.text_input(key="pf_name").set_value(name).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def make_queue(ws: Path, n: int = 3, k: int = 1, name: str = "q") -> list[int]:
    preferences.create_queue(ws, name, labels_per_item=k)
    return preferences.add_pairs(ws, name, [{"prompt": f"prompt {i}", "answer_a": f"tuned answer {i}",
                                             "answer_b": f"base answer {i}", "source_a": "tuned:r",
                                             "source_b": "base:m"} for i in range(n)])


def finished_run(ws: Path) -> Path:
    """A succeeded classification run with an adapter folder, as core.runs writes it."""
    cfg = TuneConfig(task="classification", train_file=str(ROOT / "assets" / "classification_train.jsonl"),
                     template=default_template("classification", LABELS), labels=LABELS, max_iterations=4,
                     input_column="input_text", output_column="output_text")
    run_dir = runs.create_run(ws, cfg.to_dict(), name="demo run")
    runs.update_status(run_dir, state="succeeded", step=4, max_steps=4)
    (run_dir / "adapter").mkdir()
    return run_dir


def shown_item(at: AppTest) -> int:
    return int(next(c.value for c in at.caption if c.value.endswith("· prompt")).split()[1])


def label_as(ws: Path, item: int, labeler: str, choice: str) -> None:
    """Store `choice` (a, b, tie, both_bad) whatever order this labeler sees the answers in."""
    shown = {"a": "second" if preferences.flipped(item, labeler) else "first",
             "b": "first" if preferences.flipped(item, labeler) else "second"}.get(choice, choice)
    preferences.submit(ws, item, labeler, shown)


# ---------------------------------------------------------------- Preferences: label

def test_labeling_asks_the_name_first_then_labels_undoes_and_skips(ws):
    ids = make_queue(ws)
    at = open_page("preferences")
    assert at.title[0].value == "Preferences"
    assert any("Type your name" in i.value for i in at.info)
    assert not any(b.label == "A is better" for b in at.button)  # nothing to label without a name

    at.text_input(key="pf_name").set_value("ann").run()
    assert shown_item(at) == ids[0]
    first, second = [t.value for t in at.text][1:3]  # prompt, then A and B as this labeler sees them
    flipped = preferences.flipped(ids[0], "ann")
    assert (first, second) == (("base answer 0", "tuned answer 0") if flipped else ("tuned answer 0", "base answer 0"))
    assert "source" not in " ".join(t.value for t in at.text)  # blind: no model names
    bars = [p.proto.text for p in at.get("progress")]
    assert bars[0].startswith("You: **0** of 3") and bars[1].startswith("Queue: **0** of 3")

    at.text_input(key=f"pf_comment::{ids[0]}").set_value("clearer").run()
    at.button(key="pf_first").click().run()  # "A is better"
    assert not at.exception
    assert [(r["item_id"], r["choice"], r["comment"]) for r in preferences.labels(ws, "q")] == [
        (ids[0], "b" if flipped else "a", "clearer")]  # A mapped back to the answer it showed
    assert shown_item(at) == ids[1]
    assert any(p.proto.text.startswith("You: **1** of 3") for p in at.get("progress"))

    at.button(key="pf_undo").click().run()
    assert preferences.labels(ws, "q") == []
    assert shown_item(at) == ids[0]  # the undone item comes back

    at.button(key="pf_skip_btn").click().run()
    assert shown_item(at) == ids[1] and preferences.labels(ws, "q") == []
    at.button(key="pf_tie").click().run()
    at.button(key="pf_both_bad").click().run()
    assert [(r["item_id"], r["choice"]) for r in preferences.labels(ws, "q")] == [(ids[1], "tie"), (ids[2], "both_bad")]
    assert any("skipped" in i.value for i in at.info)  # only the skipped item is left
    at.button(key="pf_unskip").click().run()
    assert shown_item(at) == ids[0]


def test_a_skip_belongs_to_the_labeler_who_made_it(ws):
    ids = make_queue(ws, k=2)
    at = as_labeler("ana")
    assert shown_item(at) == ids[0]
    at.button(key="pf_skip_btn").click().run()
    assert shown_item(at) == ids[1]
    at.text_input(key="pf_name").set_value("ben").run()  # another labeler at the same browser
    assert shown_item(at) == ids[0]  # ana's skip is not ben's
    assert not any("skipped" in c.value for c in at.caption)


def test_labeling_resumes_after_a_reload(ws):
    ids = make_queue(ws, n=4)
    at = as_labeler("ann")
    at.button(key="pf_second").click().run()
    at.button(key="pf_first").click().run()
    assert shown_item(at) == ids[2]

    again = as_labeler("ann")  # a new browser session on the same workspace
    assert shown_item(again) == ids[2]
    assert any(p.proto.text.startswith("You: **2** of 4") for p in again.get("progress"))
    other = as_labeler("bob")  # one label per item: bob gets only what still needs a label
    assert shown_item(other) == ids[2]


def test_two_labels_per_item_are_collected_before_an_item_is_complete(ws):
    ids = make_queue(ws, n=2, k=2)
    label_as(ws, ids[0], "ann", "a")
    at = as_labeler("bob")
    assert shown_item(at) == ids[0]  # ann's label alone does not complete it
    assert any("have their 2 labels" in p.proto.text for p in at.get("progress"))


# ---------------------------------------------------------------- Preferences: review

def test_review_shows_kappa_for_two_labelers_and_adjudicates(ws):
    ids = make_queue(ws, n=4, k=2)
    for item, a, b in zip(ids, ["a", "a", "b", "tie"], ["a", "b", "b", "tie"]):
        label_as(ws, item, "ann", a)
        label_as(ws, item, "bob", b)
    at = as_labeler("lead")
    assert next(m for m in at.metric if m.label == "Raw agreement").value == "75%"
    # Fleiss by hand: P̄ = 3/4, P_e = (3/8)² + (3/8)² + (2/8)² = 22/64 → κ = (0.75 − 0.34375) / 0.65625
    assert next(m for m in at.metric if m.label == "Fleiss' κ").value == f"{(0.75 - 22 / 64) / (1 - 22 / 64):.2f}"
    cohen = next(d.value for d in at.dataframe if "labelers" in d.value.columns)
    # Cohen by hand: p_o = 3/4, p_e = .5·.25 + .25·.5 + .25·.25 = .3125
    assert list(cohen["labelers"]) == ["ann / bob"]
    assert cohen["kappa"][0] == pytest.approx((0.75 - 0.3125) / (1 - 0.3125))
    per = next(d.value for d in at.dataframe if "labeler" in d.value.columns)
    assert per.set_index("labeler").loc["ann", "total"] == 4

    assert any(e.label.startswith(f"Item {ids[1]} · ann: A better · bob: B better") for e in at.expander)
    at.segmented_control(key=f"pf_adj::{ids[1]}").set_value("b").run()
    at.button(key=f"pf_adj_btn::{ids[1]}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("final choice **B better**" in s.value for s in at.success)
    dpo = preferences.export(ws, "q", "dpo")
    assert {"prompt": "prompt 1", "chosen": "base answer 1", "rejected": "tuned answer 1"} in dpo


# ---------------------------------------------------------------- Preferences: import / export

def test_import_creates_the_queue_and_export_downloads(ws, tmp_path):
    rows = [{"input_text": f"q{i}", "candidate_0": f"bad {i}", "candidate_1": f"good {i}", "choice": 1}
            for i in range(5)]
    at = as_labeler("ann")
    assert any("No labelling queue yet" in i.value for i in at.info)
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    at.file_uploader(key="pf_upload").set_value(("my pairs.jsonl", body, "application/json")).run()
    assert at.text_input(key="pf_import_queue::None::my pairs.jsonl").value == "my-pairs"
    at.button(key="pf_import").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Imported **5** pairs into queue **my-pairs**" in s.value for s in at.success)
    assert preferences.list_queues(ws) == [{"name": "my-pairs", "labels_per_item": 1, "items": 5}]
    assert "5 items" in at.selectbox(key="pf_queue").format_func("my-pairs")
    assert shown_item(at)  # ready to label
    download = next(b for b in at.get("download_button") if b.proto.label.startswith("Download my-pairs"))
    assert download.proto.label == "Download my-pairs-vertex.jsonl"
    preview = next(d.value for d in at.dataframe if "candidate_0" in d.value.columns)
    assert len(preview) == 5 and set(preview["choice"]) == {0}  # the imported choice, stored as answer A


def test_import_of_unlabeled_pairs_fills_a_queue_to_label(ws):
    rows = [{"input_text": f"q{i}", "candidate_0": f"one {i}", "candidate_1": f"two {i}"} for i in range(3)]
    rows[1]["choice"] = None  # an empty cell is the same: not labeled yet
    at = as_labeler("ann")
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    at.file_uploader(key="pf_upload").set_value(("to label.jsonl", body, "application/json")).run()
    at.button(key="pf_import").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert preferences.list_queues(ws) == [{"name": "to-label", "labels_per_item": 1, "items": 3}]
    assert [r for r in preferences.labels(ws, "to-label")] == []  # nothing labeled yet
    assert shown_item(at)  # ready to label


def test_import_of_a_wrong_file_names_the_problem(ws):
    at = as_labeler("ann")
    at.file_uploader(key="pf_upload").set_value(("notes.jsonl", b'{"input_text": "a", "output_text": "b"}\n',
                                                 "application/json")).run()
    at.button(key="pf_import").click().run()
    assert not at.exception
    assert at.error and preferences.list_queues(ws) == []


# ---------------------------------------------------------------- Evaluate: regression browser

def write_scored_evaluation(out_dir: Path, task: str, run_id: str | None, refs=REFS, answers=ANSWERS,
                            mode: str = "free") -> None:
    """metrics.json + predictions.jsonl exactly as core.evaluate.run_evaluation writes them."""
    answers = {k: v for k, v in answers.items() if run_id or k == "base"}
    labels = LABELS if task == "classification" else []
    result = {name: {**task_metrics(task, refs, a, labels),
                     "confidence_95": confidence_intervals(task, refs, a, labels)} for name, a in answers.items()}
    out_dir.mkdir(parents=True)
    runs.write_json(out_dir / "metrics.json", {
        "task": task, "data": "/data/eval.jsonl", "rows": len(refs), "template": default_template(task, labels),
        "model": "tiny", "run_id": run_id, "mode": mode, "rows_per_second": 12.5, "created": runs.now_iso(),
        **result})
    scores = {name: row_scores(task, refs, a, labels) for name, a in answers.items()}
    with open(out_dir / "predictions.jsonl", "w", encoding="utf-8") as f:
        for i, ref in enumerate(refs):
            row = {"line": i + 1, "input_text": f"description <b>{i}</b>", "reference": ref}
            for name, a in answers.items():
                row.update({name: a[i], f"{name}_score": scores[name][i]})
                if task == "classification":
                    row[f"{name}_label"] = parse_label(a[i], labels)
                if mode == "score":  # what label scoring adds to a row (core.label_scoring.top_two)
                    row.update({f"{name}_loglik": -0.5, f"{name}_runner_up": "mail", f"{name}_runner_up_loglik": -2.0})
            if "tuned" in answers:
                row["delta"], row["change"] = row_change(row["base_score"], row["tuned_score"])
            f.write(json.dumps(row) + "\n")
    runs.write_json(out_dir / "status.json", {"state": "succeeded", "done": 12, "total": 12})


def browser_table(at: AppTest):
    return next(d.value for d in at.dataframe if "change" in d.value.columns)


def test_evaluate_regression_browser_filters_and_sends_rows_to_a_queue(ws):
    out = ws / "evals" / "cls-1"
    write_scored_evaluation(out, "classification", "run-1", mode="constrained")
    at = open_page("evaluate")
    assert any("badge[:material/rule: Constrained to the label set]" in m.value for m in at.markdown)
    assert any(c.value.startswith("95% interval") for c in at.caption)  # next to macro F1 and accuracy
    table = browser_table(at)
    assert len(table) == 6 and list(table["delta"][:1]) == [-1.0]  # worst first
    assert at.segmented_control(key=f"ev_change::{out}").options == [  # "I think science" is no label: fixed
        "All rows · 6", "Fixed · 4", "Broken · 1", "Unchanged · 1"]

    at.segmented_control(key=f"ev_change::{out}").set_value("broken").run()
    assert not at.exception, [e.value for e in at.exception]
    table = browser_table(at)
    assert list(table["line"]) == [6] and set(table["change"]) == {"broken"}
    diff = at.get("html")[0].proto.body
    assert "<del" in diff and "science" in diff and "<ins" in diff and "games" in diff
    assert "&lt;b&gt;5&lt;/b&gt;" in diff and "<b>5</b>" not in diff  # the input is escaped

    assert at.button(key="ev_send").label == "Send all 1 broken row"
    at.text_input(key="ev_queue_new").set_value("regressions").run()
    at.button(key="ev_send").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Added 1 pairs to queue **regressions**" in s.value for s in at.success)
    assert preferences.list_queues(ws)[0]["items"] == 1
    item = preferences.next_item(ws, "regressions", "ann")
    assert item["prompt"] == "description <b>5</b>"
    assert {item["first"], item["second"]} == {"games", "science"}
    assert preferences.final_pairs(ws, "regressions") == []  # nothing chosen until someone labels it
    label_as(ws, item["id"], "ann", "a")
    assert preferences.export(ws, "regressions", "dpo")[0]["chosen"] == "games"  # answer A is the tuned one

    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["predictions.csv", "predictions.jsonl", "metrics.json", "Report (HTML)"]


def test_evaluate_page_offers_all_tasks_and_the_one_click_compare(ws):
    run_dir = finished_run(ws)
    at = open_page("evaluate")
    assert at.button(key="ev_compare").label == "Compare on eval set"
    assert at.button(key="ev_compare").proto.type == "primary"
    task = next(s for s in at.selectbox if s.label == "Task")
    assert task.options == ["Classification", "Summarization", "Question answering", "Text generation"]
    mode = at.radio(key=f"ev_mode::{run_dir.name}")
    assert mode.label == "Answers" and mode.value == "score"  # classification scores the labels by default
    assert mode.options == ["Score the labels", "Let the model write", "Write, labels only"]
    assert any("each label scored by log-likelihood" in c.value for c in at.caption)
    mode.set_value("generate").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("greedy decoding" in c.value for c in at.caption)


def test_evaluate_dashboard_says_which_mode_made_the_answers(ws):
    write_scored_evaluation(ws / "evals" / "cls-score", "classification", "run-1", answers=ANSWERS_IN_LABELS,
                            mode="score")
    at = open_page("evaluate")
    assert any("badge[:material/leaderboard: Label scoring]" in m.value for m in at.markdown)
    assert any("Answers: the best-scoring label of 3 (log-likelihood)" in c.value for c in at.caption)
    table = browser_table(at)
    assert list(table["base_margin"][:1]) == [1.5] and "tuned_margin" in table.columns

    write_scored_evaluation(ws / "evals" / "cls-old", "classification", None)  # an older file: mode "free"
    at.run()
    at.selectbox(key="ev_pick").set_value(str(ws / "evals" / "cls-old")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Answers: free generation, scored strictly" in c.value for c in at.caption)
    assert any("badge[:material/edit_note: Free generation]" in m.value for m in at.markdown)


def test_evaluate_question_answering_and_summarization_dashboards(ws):
    qa_refs = ["Paris", "four", "blue whale"]
    qa = {"base": ["paris, France", "5", "the whale"], "tuned": ["Paris", "four", "the blue whale"]}
    write_scored_evaluation(ws / "evals" / "qa-1", "question_answering", "run-1", qa_refs, qa)
    at = open_page("evaluate")
    f1 = next(m for m in at.metric if m.label == "Token F1")
    assert f1.value == "100.0%"
    bars = next(s for s in (json.loads(c.proto.spec) for c in at.get("plotly_chart")) if s["data"][0]["type"] == "bar")
    assert [t["name"] for t in bars["data"]] == ["Base", "Tuned"] and "error_y" in bars["data"][0]

    refs = ["fast image library", "mail client for the terminal", "plotting tool"]
    summ = {"base": ["an image library", "a client", "a tool for plots made quickly and well"],
            "tuned": ["fast image processing library", "terminal mail client", "plotting tool"]}
    write_scored_evaluation(ws / "evals" / "sum-1", "summarization", "run-1", refs, summ)
    at.run()
    at.selectbox(key="ev_pick").set_value(str(ws / "evals" / "sum-1")).run()
    assert not at.exception, [e.value for e in at.exception]
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    scatter = next(s for s in specs
                   if s["layout"].get("xaxis", {}).get("title", {}).get("text", "").startswith("Reference"))
    assert [t["name"] for t in scatter["data"]] == ["same length", "Base", "Tuned"]
    assert scatter["data"][1]["y"] == [3, 2, 8]


# ---------------------------------------------------------------- Playground: streaming and pairs

class FakeModel:
    adapter_on = True

    @contextmanager
    def disable_adapter(self):
        self.adapter_on = False
        try:
            yield
        finally:
            self.adapter_on = True


def test_playground_streams_both_answers_and_saves_a_pair(ws, monkeypatch):
    from core import generate, templates
    from studio import cached
    run_dir = finished_run(ws)
    model = FakeModel()

    def fake_stream(m, tok, prompt, cfg):
        words = ["tuned", "says", "mail"] if m.adapter_on else ["base", "says", "games"]
        for w in words:
            yield w + " "
        yield {"text": " ".join(words), "new_tokens": 3, "seconds": 0.5, "first_token_s": 0.1, "tokens_per_s": 6.0}

    monkeypatch.setattr(cached, "load_model", lambda name, adapter=None: (model, None, "CPU"))
    monkeypatch.setattr(generate, "stream_text", fake_stream)
    monkeypatch.setattr(templates, "render_prompt", lambda tok, template, text: template.replace("{input_text}", text))
    at = open_page("playground")
    at.selectbox(key="pg_run").set_value(run_dir.name).run()
    at.text_area(key="pg_prompt").set_value("a terminal mail reader").run()
    next(b for b in at.button if b.label == "Generate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    texts = [m.value for m in at.markdown]
    assert "base says games" in texts and "tuned says mail" in texts
    assert sum("first token 0.10 s" in c.value and "6.0 tokens/s" in c.value for c in at.caption) == 2
    assert at.number_input(key="pg_seed").value == 0

    at.text_input(key="pg_queue_new").set_value("playground").run()
    at.button(key="pg_save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    item = preferences.next_item(ws, "playground", "ann")
    assert item["prompt"] == "a terminal mail reader"
    label_as(ws, item["id"], "ann", "a")
    assert preferences.export(ws, "playground", "dpo") == [
        {"prompt": "a terminal mail reader", "chosen": "tuned says mail", "rejected": "base says games"}]
    assert at.button(key="pg_save").disabled  # saved once

    at.text_area(key="pg_prompt").set_value("something else").run()
    at.button(key="pg_hist_0").click().run()  # the history puts an earlier input back
    assert at.text_area(key="pg_prompt").value == "a terminal mail reader"


# ---------------------------------------------------------------- core.report

def test_comparison_report_holds_the_headline_numbers_and_regressions():
    labels = LABELS
    metrics = {"task": "classification", "data": "/d/eval.jsonl", "rows": 6, "model": "tiny", "run_id": "run-1",
               "mode": "free", "created": "2026-01-01T00:00:00+00:00"}
    for name, a in ANSWERS.items():
        metrics[name] = {**task_metrics("classification", REFS, a, labels),
                         "confidence_95": confidence_intervals("classification", REFS, a, labels)}
    scores = {n: row_scores("classification", REFS, a, labels) for n, a in ANSWERS.items()}
    preds = []
    for i, ref in enumerate(REFS):
        row = {"line": i + 1, "input_text": f"<script>alert({i})</script>", "reference": ref,
               "base": ANSWERS["base"][i], "tuned": ANSWERS["tuned"][i],
               "base_score": scores["base"][i], "tuned_score": scores["tuned"][i]}
        row["delta"], row["change"] = row_change(row["base_score"], row["tuned_score"])
        preds.append(row)
    page = comparison_html(metrics, preds)
    tuned_macro = metrics["tuned"]["macro_f1"]
    assert f"{tuned_macro:.1%}" in page and f"{metrics['base']['macro_f1']:.1%}" in page
    lo, hi = metrics["tuned"]["confidence_95"]["macro_f1"]
    assert f"{lo:.1%} – {hi:.1%}" in page
    assert "6 rows" in page and "base 6 of 6 rows answered" in page
    assert "<b>4</b> fixed · <b>1</b> broken · <b>1</b> unchanged" in page
    assert all(f"<td>{lab}</td>" in page for lab in labels)  # the per-class F1 table
    assert "line 6" in page and "<script" not in page and "&lt;script&gt;" in page
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched: works offline
    assert len(page) < 20_000


def test_word_diff_marks_removed_and_added_words_and_escapes():
    out = word_diff_html("the <old> answer", "the new answer")
    assert out.startswith("the <del") and ">&lt;old&gt;</del>" in out and ">new</ins>" in out
    assert out.endswith("answer")
    assert word_diff_html("same words", "same words") == "same words"
    assert word_diff_html(None, "new") .endswith(">new</ins>")


def test_generate_candidates_starts_a_background_job_and_shows_its_outcome(ws, monkeypatch):
    from core import jobs

    make_queue(ws)
    run_dir = finished_run(ws)
    calls = []

    def fake_submit(job_dir):  # the job folder as core made it; the worker's outcome written by hand
        calls.append(runs.read_json(Path(job_dir) / "job.json"))
        runs.update_status(job_dir, state="succeeded", pairs=7, done=4, total=4)
        return "started"

    monkeypatch.setattr(jobs, "submit", fake_submit)
    at = as_labeler("ann")
    at.selectbox(key="pf_gen_b").set_value(next(o for o in at.selectbox(key="pf_gen_b").options if run_dir.name in o))
    at.button(key="pf_gen_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    [job] = calls
    config = job["config"]
    assert job["kind"] == "candidates" and config["queue"] == "q" and config["a"]["temperature"] == 0.0
    assert config["b"] == {"run": run_dir.name, "temperature": 0.9, "seed": 1}
    assert config["limit"] == 20 and config["prompts"].endswith(".jsonl")
    assert any("Added **7** pairs" in s.value for s in at.success)
    at = as_labeler("ann")  # a new visit still shows the outcome: it is read from the workspace
    assert any("Added **7** pairs" in s.value for s in at.success)


def test_playground_adds_panes_for_checkpoints(ws, monkeypatch):
    from core import generate, templates
    from studio import cached
    run_dir = finished_run(ws)
    ckpt = run_dir / "checkpoints" / "checkpoint-2"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_config.json").write_text("{}")
    loaded = []

    def fake_load(name, adapter=None):
        loaded.append(str(adapter))
        return FakeModel(), None, "CPU"

    def fake_stream(m, tok, prompt, cfg):
        yield {"text": f"answer {len(loaded)}", "new_tokens": 2, "seconds": 0.2, "first_token_s": 0.1,
               "tokens_per_s": 10.0}

    monkeypatch.setattr(cached, "load_model", fake_load)
    monkeypatch.setattr(generate, "stream_text", fake_stream)
    monkeypatch.setattr(templates, "render_prompt", lambda tok, template, text: text)
    at = open_page("playground")
    at.selectbox(key="pg_run").set_value(run_dir.name).run()
    label = f"{run_dir.name} · step 2"
    assert label in at.multiselect(key="pg_extra").options
    at.multiselect(key="pg_extra").set_value([label]).run()
    at.text_area(key="pg_prompt").set_value("hello").run()
    next(b for b in at.button if b.label == "Generate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert str(ckpt) in loaded  # the checkpoint's adapter answered in its own pane
    assert any(label in m.value for m in at.markdown)


def test_the_labeler_name_survives_a_reload_and_one_choice_reads_as_undefined_agreement(ws):
    ids = make_queue(ws, n=2, k=2)
    for item in ids:
        for who in ("ann", "bob"):
            preferences.submit(ws, item, who, "second" if preferences.flipped(item, who) else "first")
    at = as_labeler("ann")
    assert at.query_params.get("labeler") in ("ann", ["ann"])  # kept in the address
    again = AppTest.from_file(str(ROOT / "studio" / "app.py"), default_timeout=30)
    again.query_params["labeler"] = "ann"  # a reload of that address
    again.run()
    again.switch_page("app_pages/preferences.py").run()
    assert not again.exception, [e.value for e in again.exception]
    assert again.text_input(key="pf_name").value == "ann"
    fleiss = next(m for m in again.metric if m.label == "Fleiss' κ")
    assert fleiss.value == "undefined" and "cannot be measured" in fleiss.help
