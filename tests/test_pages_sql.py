"""The SQL page through the real navigation: the prefilled editor, a plain DuckDB statement's table and
downloads, a bad statement's number, clause and hint, the tables and models beside the editor, the
history, and a background job's progress and result. No model is loaded, except by the last test: the
example script end to end on the tiny model."""
from __future__ import annotations

import time

import pytest
from conftest import open_page
from streamlit.testing.v1 import AppTest

from core import runs
from core.sql.database import open_database

SAMPLE_TABLES = {"classification_train", "classification_eval", "summarization_train", "summarization_eval"}


def run_script(at: AppTest, text: str, button: str = "Run") -> AppTest:
    """Type into the editor and press a button of its form (as Ctrl+Enter does for Run)."""
    at.text_area(key="sql_editor").set_value(text)
    next(b for b in at.button if b.label == button).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_renders_on_an_empty_workspace_with_the_example_script(ws):
    at = open_page("sql")
    assert at.title[0].value == "SQL"
    script = at.text_area(key="sql_editor").value
    for part in ("CREATE OR REPLACE MODEL sections_tuned", "ML.GENERATE_TEXT", "ML.EVALUATE", "ML.TRAINING_INFO",
                 "FROM classification_train"):
        assert part in script
    assert not at.error and not at.dataframe  # nothing runs before the user asks
    assert any("Run the script above" in i.value for i in at.info)


def test_drawing_the_page_leaves_an_empty_workspace_empty(ws):
    open_page("sql").run()
    assert sorted(str(p.relative_to(ws)) for p in ws.rglob("*") if p.is_file()) == []


def test_a_plain_statement_shows_its_table_and_downloads(ws):
    at = run_script(open_page("sql"), "SELECT 42 AS answer")
    assert at.dataframe[0].value["answer"].tolist() == [42]
    assert {b.proto.label for b in at.get("download_button")} == {"CSV", "Parquet"}
    assert "**1** · 1 row" in markdown(at)
    assert not at.error


def test_several_statements_run_in_order_with_a_line_each(ws):
    at = run_script(open_page("sql"), "CREATE TABLE t AS SELECT range AS n FROM range(5);\n"
                                      "SELECT sum(n) AS total FROM t;")
    assert at.dataframe[-1].value["total"].tolist() == [10]
    text = markdown(at)
    assert "**1** ·" in text and "**2** ·" in text


def test_a_bad_option_shows_the_statement_clause_and_hint_and_stops_there(ws):
    at = run_script(open_page("sql"), "SELECT 1 AS one;\n"
                                      "CREATE OR REPLACE MODEL m OPTIONS (endpoint = 'bundled:SmolLM2-135M-Instruct', "
                                      "max_iteration = 3) AS SELECT input_text AS prompt, output_text AS label "
                                      "FROM classification_train;\n"
                                      "CREATE TABLE never AS SELECT 1 AS x;")
    error = at.error[0].value
    assert "Statement 2" in error and "max_iteration" in error and "max_iterations" in error
    assert "did not run" in error and "Traceback" not in error
    assert len(at.dataframe) == 1  # statement 1's table; statement 3 never ran
    assert runs.list_runs(ws) == []


@pytest.mark.parametrize("script, words", [("SELECT 1;\nSELEC 2;", "SELEC"),
                                           ("SELECT 1;\nSELECT 'never closed", "unterminated string")])
def test_a_syntax_error_names_its_statement(ws, script, words):
    at = run_script(open_page("sql"), script)
    assert "Statement 2" in at.error[0].value and words in at.error[0].value
    assert "Traceback" not in at.error[0].value


def test_the_tables_list_shows_the_sample_tables_with_their_columns(ws):
    at = open_page("sql")
    names = {e.label for e in at.expander}
    assert SAMPLE_TABLES <= names
    assert "`input_text`" in markdown(at)


def test_preview_runs_a_select_on_the_table(ws):
    at = open_page("sql")
    at.button(key="sql_preview::classification_eval").click().run()
    assert not at.exception
    frame = at.dataframe[0].value
    assert len(frame) == 20 and {"input_text", "output_text"} <= set(frame.columns)


def test_the_run_last_statement_button_runs_only_the_last_one(ws):
    at = run_script(open_page("sql"), "CREATE TABLE first_one AS SELECT 1 AS x;\nSELECT 7 AS seven;",
                    button="Run last statement")
    assert at.dataframe[0].value["seven"].tolist() == [7]
    at = run_script(at, "SELECT * FROM first_one")
    assert "first_one" in at.error[0].value  # the first statement never ran


def test_history_lists_statements_and_loads_or_runs_them_again(ws):
    at = run_script(open_page("sql"), "SELECT 42 AS answer")
    at = run_script(at, "SELECT 1 AS one")
    assert "`SELECT 42 AS answer`" in markdown(at)
    at.button(key="sql_load::1").click().run()  # the second newest: SELECT 42
    assert at.text_area(key="sql_editor").value == "SELECT 42 AS answer"
    at.button(key="sql_again::1").click().run()  # SELECT 42 again
    assert not at.exception
    assert at.dataframe[0].value["answer"].tolist() == [42]


def test_models_made_by_statements_are_listed(ws):
    at = run_script(open_page("sql"), "CREATE OR REPLACE MODEL base_model OPTIONS "
                                      "(endpoint = 'bundled:SmolLM2-135M-Instruct')")
    assert not at.error
    assert "**base_model**" in markdown(at)


# ---------------------------------------------------------------- statements that run as jobs

JOB_SCRIPT = ("CREATE OR REPLACE MODEL base_model OPTIONS (endpoint = 'bundled:SmolLM2-135M-Instruct');\n"
              "CREATE TABLE answers AS SELECT * FROM ML.GENERATE_TEXT(MODEL base_model, "
              "(SELECT input_text AS prompt FROM classification_eval LIMIT 12), STRUCT(4 AS max_output_tokens));\n"
              "SELECT count(*) AS answered FROM answers;")


def finish_job(job_dir, rows: int, table: str | None = None) -> None:
    """What the worker leaves in a finished sql job's folder (core.sql.jobs.write_result), without a model:
    the answered rows, or (for CREATE TABLE … AS SELECT * FROM ML.…) the table made."""
    import pandas as pd

    from core.sql.jobs import write_result
    from core.sql.result import SqlResult

    if table:
        with open_database(job_dir.parents[2]) as con:
            con.execute(f"CREATE TABLE {table} AS SELECT range AS i FROM range({rows})")
        result = SqlResult("…", "done", message=f"Created table {table} ({rows} rows).")
    else:
        frame = pd.DataFrame({"prompt": [f"p{i}" for i in range(rows)], "ml_generate_text_llm_result": "x",
                              "ml_generate_text_status": ""})
        result = SqlResult("…", "rows", frame=frame, message=f"{rows} rows (ML.GENERATE_TEXT).")
    write_result(job_dir, result)
    runs.update_status(job_dir, state="succeeded", done=rows, total=rows)


def test_a_job_shows_progress_can_be_left_and_the_script_goes_on_when_it_is_done(ws, monkeypatch):
    from core import jobs

    monkeypatch.setattr(jobs, "submit", lambda job_dir: "queued")  # no worker: the test plays its part
    at = run_script(open_page("sql"), JOB_SCRIPT)
    job_dir = next((ws / "sql" / "jobs").iterdir())
    assert at.get("progress")[0].proto.text == "Starting…"
    assert "Statement 3 runs when the job above is done" in "\n".join(c.value for c in at.caption)
    runs.update_status(job_dir, state="running", done=6, total=12, phase="generating")
    at.run()
    assert "6 of 12 rows" in at.get("progress")[0].proto.text and not at.error

    at.switch_page("app_pages/runs.py").run()  # leave the page while it computes
    finish_job(job_dir, 12, table="answers")
    at.switch_page("app_pages/sql.py").run()
    at.run()  # the first run collects the job's result and reruns; statement 3 then runs
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [d.value["answered"].tolist() for d in at.dataframe] == [[12]]
    assert "Created table answers (12 rows)" in markdown(at)
    assert not at.get("progress")


def test_a_finished_job_of_an_earlier_visit_shows_its_rows_from_history(ws, monkeypatch):
    from core import jobs

    monkeypatch.setattr(jobs, "submit", lambda job_dir: "queued")
    run_script(open_page("sql"), JOB_SCRIPT.split(";")[0] + ";" + JOB_SCRIPT.split(";")[1])
    job_dir = next((ws / "sql" / "jobs").iterdir())
    finish_job(job_dir, 12)
    at = open_page("sql")  # a new visit: a new session, nothing in it
    assert not at.dataframe
    at.button(key="sql_show::0").click().run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 12


def test_the_example_script_runs_end_to_end_on_the_tiny_model(ws, tiny_model_dir):
    """The five statements the page is prefilled with, on the tiny model with 2 steps: the tuning run and
    the two ML jobs go through the real queue and worker; the page follows them to the last table."""
    from studio.sql_views import EXAMPLE_SCRIPT

    script = EXAMPLE_SCRIPT.replace("bundled:SmolLM2-135M-Instruct", str(tiny_model_dir)) \
        .replace("max_iterations = 100", "max_iterations = 2")
    at = run_script(open_page("sql"), script)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        batch = at.session_state["sql_batch"]
        if batch["error"] or (batch["next"] == 5 and not any(e["kind"] == "job" for e in batch["entries"])):
            break
        time.sleep(2)
        at.run()  # what the page's live cards do every few seconds
        assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    generated, evaluated, curve = (d.value for d in at.dataframe)
    assert len(generated) == 20 and {"ml_generate_text_llm_result", "ml_generate_text_status"} <= set(generated)
    assert list(evaluated.columns) == ["label", "f1_score"] and (evaluated["f1_score"] < 0.5).all()
    assert curve["iteration"].tolist() == [1, 2]
    text = markdown(at)
    assert "Created model base_model" in text and "Tuning run sections_tuned succeeded" in text
