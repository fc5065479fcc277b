"""Bad SQL statements: each gets an error that names the statement, the clause or option and what to do,
and changes nothing in the workspace. No model loads: every error comes before one would (the base model
here is a folder holding only config.json, so a load would fail with another message)."""
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from core import catalog, runs
from core.sql import SqlError, run_sql
from core.sql import models as sql_models

TRAIN = "SELECT CONCAT('Classify: ', input_text) AS prompt, output_text AS label FROM classification_train"
EVALUATE_SUMMARIES = "SELECT * FROM ML.EVALUATE(MODEL base, {}, STRUCT('summarization' AS task_type))"
GEN = "SELECT * FROM ML.GENERATE_TEXT(MODEL base, (SELECT 'hello' AS prompt), STRUCT({}))"


@pytest.fixture
def bad(tmp_path):
    """A workspace with a table, a base model, a dataset, a run still training, a failed one and one made
    on the Tune page (no SQL name)."""
    ws = tmp_path / "ws"
    ws.mkdir()
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    outside = tmp_path / "outside.csv"
    outside.write_text("a\n1\n")
    rows = [{"input_text": f"ticket {i}", "output_text": "bug" if i % 2 else "feature", "line": i + 1} for i in range(12)]
    catalog.register_rows(ws, "tickets", rows, source=tmp_path / "tickets.jsonl", format="prompt_answer")
    run_sql(ws, f"CREATE TABLE people AS SELECT 1 AS id, 'ann' AS name; "
                f"CREATE TABLE prompts AS SELECT 'hi' AS prompt, 'x' AS input_text, 'y' AS output_text; "
                f"CREATE MODEL base OPTIONS (endpoint = '{model}')")
    for name, state in (("training_model", "running"), ("failed_model", "failed")):
        run = runs.create_run(ws, {"task": "classification", "max_iterations": 100, "model": str(model)}, name=name)
        runs.update_status(run, state=state, step=40, pid=os.getpid(), heartbeat_ts=time.time(),
                           error="RuntimeError: boom" if state == "failed" else None)
        sql_models.register(ws, name, endpoint=str(model), run_id=run.name, task="classification", statement="…")
    runs.create_run(ws, {"task": "classification", "max_iterations": 10, "model": str(model)}, name="page_run")
    return SimpleNamespace(ws=ws, model=model, outside=outside)


def snapshot(ws: Path) -> dict:
    """Every file's size and modification time, except the history (every statement is recorded there)."""
    history = ws / "sql" / "history.jsonl"
    return {str(p.relative_to(ws)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(ws.rglob("*")) if p.is_file() and p != history}


CASES = [
    # CREATE MODEL: options
    ("CREATE MODEL m OPTIONS (endpoint = '{model}', max_iteration = 10) AS " + TRAIN,
     "did you mean `max_iterations`?", "OPTIONS max_iteration", "max_iterations"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}', learning_rate_multipler = 2.0) AS " + TRAIN,
     "did you mean `learning_rate_multiplier`?", "OPTIONS learning_rate_multipler", "takes"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}', max_iterations = 'ten') AS " + TRAIN,
     "must be a whole number, got 'ten'", "OPTIONS max_iterations", "max_iterations = 100"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}', max_iterations = 2.5) AS " + TRAIN,
     "must be a whole number", "OPTIONS max_iterations", "max_iterations = 100"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}', max_iterations = 0) AS " + TRAIN,
     "must be at least 1", "OPTIONS max_iterations", "max_iterations = 100"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}', max_iterations = 1 + 1) AS " + TRAIN,
     "is not a constant", "OPTIONS max_iterations", "constants"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}', data_split_method = 'RANDOM_SPLIT') AS " + TRAIN,
     "did you mean 'RANDOM'?", "OPTIONS data_split_method", "AUTO_SPLIT"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}', data_split_method = 'CUSTOM') AS " + TRAIN,
     "needs data_split_col", "OPTIONS data_split_col", "boolean"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}', data_split_eval_fraction = 1.5) AS " + TRAIN,
     "at most 1", "OPTIONS data_split_eval_fraction", "0.2"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}', input_label_cols = 'label') AS " + TRAIN,
     "must be a list of strings", "OPTIONS input_label_cols", "['label']"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}', evaluation_task = 'CLASSIFY') AS " + TRAIN,
     "did you mean 'CLASSIFICATION'?", "OPTIONS evaluation_task", "SUMMARIZATION"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}', max_iterations = 5, max_iterations = 6) AS " + TRAIN,
     "given twice", "OPTIONS max_iterations", "Keep one"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}', max_iterations = 5)",
     "is for tuning", "OPTIONS max_iterations", "AS SELECT"),
    ("CREATE MODEL m OPTIONS (prompt_col = 'prompt') AS " + TRAIN,
     "needs the base model", "OPTIONS endpoint", "endpoint = 'bundled:SmolLM2-135M-Instruct'"),
    ("CREATE MODEL m OPTIONS (endpoint = 'bundled:GPT-9')", "no bundled model", "OPTIONS endpoint",
     "'bundled:SmolLM2-135M-Instruct'"),
    ("CREATE MODEL m OPTIONS (endpoint = '/no/such/model')", "neither the bundled model", "OPTIONS endpoint",
     "hub id"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}', max_iterations = ) AS " + TRAIN,
     "cannot be parsed", "line 1, column", "OPTIONS (name = value"),
    # CREATE MODEL: names and the rows
    ("CREATE MODEL base OPTIONS (endpoint = '{model}')", "model `base` already exists", "CREATE MODEL base",
     "CREATE OR REPLACE MODEL base"),
    ("CREATE MODEL `a/b` OPTIONS (endpoint = '{model}')", "not a valid name", "CREATE MODEL a/b", "letters, digits"),
    ("CREATE MODEL proj.m OPTIONS (endpoint = '{model}')", "one word", "CREATE MODEL", "`m`"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}') AS SELECT input_text, output_text AS label FROM classification_train",
     "the SELECT has no `prompt` column (it has input_text, label); prompt_col names the column that holds the prompt",
     "prompt_col", "AS prompt"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}') AS SELECT input_text AS prompt FROM classification_train",
     "has no `label` column", "input_label_cols", "AS label"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}') AS SELECT input_text AS prompt, NULL AS label FROM classification_train",
     "NULL `label`", "input_label_cols", "IS NOT NULL"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}') AS " + TRAIN + " LIMIT 5",
     "leaves 5 training rows; tuning needs at least 10", "AS SELECT", "Select more rows"),
    ("CREATE MODEL m OPTIONS (endpoint = '{model}') AS SELECT * FROM classification_trian",
     "classification_trian does not exist", "CREATE MODEL … AS SELECT", "classification_train"),
    # ML functions
    ("SELECT * FROM ML.GENERATE_TEXT(MODEL bsae, (SELECT 'hello' AS prompt))", "unknown model `bsae`; did you mean `base`?",
     "ML.GENERATE_TEXT MODEL bsae", "The models are: base"),
    ("SELECT * FROM ML.GENERATE_TEXT(MODEL base, (SELECT 'hello' AS text))",
     "has no `prompt` column (it has text)", "ML.GENERATE_TEXT input", "AS prompt"),
    (GEN.format("0.5 AS temprature"), "did you mean `temperature`?", "ML.GENERATE_TEXT STRUCT temprature", "max_output_tokens"),
    (GEN.format("'hot' AS temperature"), "must be a number, got 'hot'", "ML.GENERATE_TEXT STRUCT temperature",
     "0.0 AS temperature"),
    (GEN.format("0 AS max_output_tokens"), "must be at least 1", "ML.GENERATE_TEXT STRUCT max_output_tokens",
     "16 AS max_output_tokens"),
    (GEN.format("'yes' AS flatten_json_output"), "must be TRUE or FALSE", "flatten_json_output", "TRUE AS flatten_json_output"),
    (GEN.format("0.5"), "has no name", "ML.GENERATE_TEXT STRUCT", "0.0 AS temperature"),
    ("SELECT * FROM ML.GENERATE_TEXT(base, (SELECT 'hello' AS prompt))", "must be MODEL name", "ML.GENERATE_TEXT MODEL",
     "MODEL sections_tuned"),
    ("SELECT * FROM ML.GENERATE_TEXT(MODEL base)", "needs input rows", "ML.GENERATE_TEXT input", "SELECT"),
    ("SELECT * FROM ML.GENERATE_TEXT(MODEL base, 'hello')", "must be its input rows", "ML.GENERATE_TEXT input", "SELECT"),
    ("SELECT * FROM ML.PREDICT(MODEL base, (SELECT 1 AS x))", "unknown function ML.PREDICT", "ML.PREDICT", "ML.GENERATE_TEXT"),
    ("SELECT * FROM ML.GENERATE_TXT(MODEL base, (SELECT 1 AS x))", "did you mean ML.GENERATE_TEXT?", "ML.GENERATE_TXT",
     "ML.EVALUATE"),
    ("SELECT ML.GENERATE_TEXT(MODEL base, (SELECT 'hi' AS prompt))", "belongs in FROM", "ML.GENERATE_TEXT", "FROM ML."),
    ("SELECT * FROM ML.GENERATE_TEXT(MODEL base, (SELECT * FROM ML.GENERATE_TEXT(MODEL base, TABLE prompts)))",
     "holds another ML function", "ML.GENERATE_TEXT input", "CREATE TABLE"),
    ("SELECT * FROM ML.GENERATE_TEXT(MODEL base, TABLE nosuch)", "nosuch does not exist", "the input of ML.GENERATE_TEXT",
     "prompts"),
    ("SELECT nosuch FROM ML.GENERATE_TEXT(MODEL base, TABLE prompts)", "nosuch", "the statement around ML.GENERATE_TEXT",
     "ml_generate_text_result"),
    ("SELECT * FROM ML.GENERATE_TEXT(MODEL training_model, TABLE prompts)",
     "model `training_model` is still training (step 40 of 100)", "ML.GENERATE_TEXT MODEL training_model", "--wait"),
    ("SELECT * FROM ML.GENERATE_TEXT(MODEL failed_model, TABLE prompts)", "failed: RuntimeError: boom",
     "ML.GENERATE_TEXT MODEL failed_model", "CREATE OR REPLACE MODEL failed_model"),
    ("CREATE VIEW answers AS SELECT * FROM ML.GENERATE_TEXT(MODEL base, TABLE prompts)", "a view cannot hold",
     "CREATE VIEW", "CREATE TABLE"),
    ("SELECT * FROM ML.EVALUATE(MODEL training_model, (SELECT 'x' AS input_text))", "has no `output_text` column",
     "ML.EVALUATE input", "AS output_text"),
    (EVALUATE_SUMMARIES.format("(SELECT 'x' AS input_text, NULL AS output_text)"), "NULL `output_text`",
     "ML.EVALUATE input", "IS NOT NULL"),
    ("SELECT * FROM ML.EVALUATE(MODEL base, TABLE prompts, STRUCT('classify' AS task_type))",
     "did you mean 'classification'?", "ML.EVALUATE STRUCT task_type", "summarization"),
    ("SELECT * FROM ML.EVALUATE(MODEL base, TABLE prompts)", "needs the task of base model `base`",
     "ML.EVALUATE STRUCT task_type", "'classification' AS task_type"),
    ("SELECT * FROM ML.EVALUATE(MODEL base, TABLE prompts, STRUCT('classification' AS task_type, 5 AS top_k))",
     "unknown option `top_k`", "ML.EVALUATE STRUCT top_k", "task_type"),
    ("SELECT * FROM ML.TRAINING_INFO(MODEL base)", "base model: it has no training", "ML.TRAINING_INFO MODEL",
     "CREATE MODEL"),
    ("SELECT * FROM ML.TRAINING_INFO(MODEL base, TABLE prompts)", "at most 1 argument", "ML.TRAINING_INFO",
     "ML.TRAINING_INFO(MODEL m)"),
    # models by name
    ("DROP MODEL nosuch", "unknown model `nosuch`", "DROP MODEL nosuch", "IF EXISTS"),
    ("DROP MODEL page_run", "is the name of run", "DROP MODEL page_run", "Runs page"),
    # plain SQL
    ("SELEC * FROM people", 'syntax error at or near "SELEC"', "line 1, column 1", "missing comma"),
    ("SELECT *\nFROM people\nWHERE id = = 1", 'syntax error at or near "="', "line 3, column 12", "missing comma"),
    ("SELECT 'abc FROM people", "unterminated string", "line 1, column 8", "Close the string"),
    ("SELECT * FROM peple", "peple does not exist", None, "people"),
    ("SELECT nam FROM people", 'column "nam" not found', "line 1, column 8", '"name"'),
    # files outside the workspace
    ("SELECT * FROM '{outside}'", "files outside the workspace cannot be read", "'{outside}'", "--allow-dir"),
    ("SELECT * FROM read_csv('/etc/passwd')", "files outside the workspace cannot be read: /etc/passwd", "/etc/passwd",
     "/files"),
    ("CREATE TABLE stolen AS SELECT * FROM read_text('/etc/hostname')", "cannot be read: /etc/hostname", "/etc/hostname",
     "--allow-dir"),
    ("SELECT * FROM 'https://example.com/data.csv'", "only local files can be read", "https://example.com/data.csv",
     "Download it"),
    ("SELECT * FROM 'nosuch.jsonl'", "no file `nosuch.jsonl`", "'nosuch.jsonl'", "/files"),
    # statements that reach beyond the database or change its settings
    ("ATTACH '{outside}.duckdb' AS other", "ATTACH is not allowed", "ATTACH", "files"),
    ("DETACH other", "DETACH is not allowed", "DETACH", "Leave"),
    ("COPY people TO 'people.csv'", "COPY … TO is not allowed", "COPY … TO", "download"),
    ("COPY (SELECT * FROM people) TO '/tmp/people.parquet' (FORMAT parquet)", "COPY … TO is not allowed", "COPY … TO",
     "CREATE TABLE"),
    ("EXPORT DATABASE 'backup'", "EXPORT DATABASE is not allowed", "EXPORT", "download"),
    ("INSTALL httpfs", "cannot be installed", "INSTALL", "read_csv"),
    ("LOAD httpfs", "cannot be loaded", "LOAD", "read_parquet"),
    ("SET enable_external_access = true", "settings cannot be changed", "SET", "--allow-dir"),
    ("RESET allowed_directories", "settings cannot be changed", "RESET", "--allow-dir"),
    ("PRAGMA enable_profiling", "PRAGMA statements are not allowed", "PRAGMA", "DESCRIBE"),
    ("BEGIN TRANSACTION", "transactions are not available", "BEGIN", "Leave"),
    ("CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 'v')", "secrets cannot be created", "CREATE SECRET", "WORKSPACE/files"),
    # the dataset and sample views
    ("DROP VIEW tickets_train", "read-only view of the registered dataset `tickets`", "DROP VIEW tickets_train",
     "studio data delete tickets"),
    ("DROP TABLE IF EXISTS classification_train", "read-only view of the samples", "DROP TABLE classification_train",
     "another name"),
    ("CREATE OR REPLACE TABLE classification_eval AS SELECT 1 AS x", "read-only view", "CREATE OR REPLACE TABLE",
     "CREATE TABLE my_rows"),
    ("INSERT INTO tickets_train VALUES ('x', 'y')", "read-only view", "INSERT INTO tickets_train", "CREATE TABLE my_rows"),
    ("DELETE FROM classification_train", "read-only view", "DELETE FROM classification_train", "my_rows"),
]


@pytest.mark.parametrize("sql, message, clause, hint", CASES, ids=[c[0][:60] for c in CASES])
def test_bad_statement_is_a_clear_error_that_changes_nothing(bad, sql, message, clause, hint):
    fill = lambda text: text.format(model=bad.model, outside=bad.outside) if text else text
    sql = fill(sql)
    before = snapshot(bad.ws)
    models_before = sql_models.read_registry(bad.ws)
    with pytest.raises(SqlError) as caught:
        run_sql(bad.ws, sql)
    e = caught.value
    assert e.statement == 1
    assert fill(message) in e.message, e.describe()
    if clause:
        assert e.clause and fill(clause) in e.clause, e.describe()
    assert e.hint and fill(hint) in e.hint, e.describe()
    assert "Traceback" not in e.describe()
    assert snapshot(bad.ws) == before
    assert sql_models.read_registry(bad.ws) == models_before
    last = run_history(bad.ws)
    assert last["statement"] == sql and last["state"] == "failed"


def run_history(ws: Path) -> dict:
    from core.sql import history

    return history(ws, limit=1)[0]


def test_the_failing_statement_of_a_script_is_named_and_the_ones_before_stay_done(bad):
    with pytest.raises(SqlError) as caught:
        run_sql(bad.ws, "CREATE TABLE kept AS SELECT 1 AS x; SELECT * FROM kept WHERE x = = 1; CREATE TABLE never AS SELECT 1")
    assert caught.value.statement == 2 and caught.value.clause == "line 1, column 30"
    names = [r[0] for r in run_sql(bad.ws, "SELECT table_name FROM duckdb_tables() ORDER BY 1")[0].frame.values]
    assert "kept" in names and "never" not in names


def test_allowed_folders_and_workspace_files_can_be_read(bad, tmp_path):
    files = bad.ws / "files"
    files.mkdir()
    (files / "rows.jsonl").write_text('{"input_text": "a", "output_text": "b"}\n')
    assert run_sql(bad.ws, "SELECT * FROM 'rows.jsonl'")[0].frame.to_dict("records") == [
        {"input_text": "a", "output_text": "b"}]
    with pytest.raises(SqlError):
        run_sql(bad.ws, f"SELECT * FROM '{bad.outside}'")
    frame = run_sql(bad.ws, f"SELECT * FROM read_csv('{bad.outside}')", allow_dirs=[tmp_path])[0].frame
    assert frame.to_dict("records") == [{"a": 1}]
