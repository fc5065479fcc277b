"""`studio sql`: a statement or a script, printed as a table, CSV or JSON; a bad statement's number,
clause, hint and exit code; and the workflow end to end on the tiny model (CREATE MODEL --wait,
ML.GENERATE_TEXT as a background job, ML.EVALUATE, ML.TRAINING_INFO)."""
from __future__ import annotations

import json

from core import runs
from core.cli import main


def sql(workspace, *argv) -> int:
    return main(["sql", *argv, "--workspace", str(workspace)])


def test_a_statement_prints_a_readable_table(workspace, capsys):
    assert sql(workspace, "SELECT 42 AS answer, 'forty-two' AS words") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["answer", "words"] and set(out[1]) <= {"-", " "}
    assert out[2].split() == ["42", "forty-two"] and out[3].startswith("1 row")


def test_json_output(workspace, capsys):
    assert sql(workspace, "SELECT 42 AS answer; SELECT 'x' AS letter", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["error"] is None and [r["statement_number"] for r in out["results"]] == [1, 2]
    assert out["results"][0]["rows"] == [{"answer": 42}] and out["results"][0]["columns"] == ["answer"]
    assert out["results"][1]["kind"] == "rows" and out["results"][1]["rows"] == [{"letter": "x"}]


def test_csv_output_keeps_messages_off_stdout(workspace, capsys):
    assert sql(workspace, "CREATE TABLE t AS SELECT range AS n FROM range(3); SELECT n, n * n AS sq FROM t",
               "--csv") == 0
    captured = capsys.readouterr()
    assert captured.out == "n,sq\n0,0\n1,1\n2,4\n"


def test_a_script_file_runs_its_statements_in_order(workspace, tmp_path, capsys):
    script = tmp_path / "count.sql"
    script.write_text("-- sections of the sample\n"
                      "CREATE TABLE sections AS SELECT output_text AS section, count(*) AS n\n"
                      "  FROM classification_train GROUP BY 1;\n\n"
                      "SELECT sum(n) AS total, count(*) AS sections FROM sections;\n")
    assert sql(workspace, "-f", str(script), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"][-1]["rows"] == [{"total": 400, "sections": 17}]


def test_a_bad_statement_exits_1_with_its_number_clause_and_hint(workspace, capsys):
    code = sql(workspace, "SELECT 1; "
                          "CREATE OR REPLACE MODEL m OPTIONS (endpoint = 'bundled:SmolLM2-135M-Instruct', "
                          "max_iteration = 3) AS SELECT input_text AS prompt, output_text AS label "
                          "FROM classification_train; "
                          "CREATE TABLE never AS SELECT 1 AS x")
    err = capsys.readouterr().err
    assert code == 1 and "statement 2 of 3" in err and "max_iteration" in err and "max_iterations" in err
    assert "statement 3 did not run" in err and "Traceback" not in err
    assert runs.list_runs(workspace) == []
    assert sql(workspace, "SELECT * FROM never") == 1  # the script stopped before it
    assert "statement 1" in capsys.readouterr().err


def test_a_bad_statement_in_json_mode(workspace, capsys):
    assert sql(workspace, "SELECT 1 AS one; SELEC 2", "--json") == 1
    out = json.loads(capsys.readouterr().out)
    assert len(out["results"]) == 1 and out["error"]["statement_number"] == 2
    assert out["error"]["message"]


def test_files_outside_the_workspace_need_allow_dir(workspace, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.csv").write_text("id,text\n1,hello\n2,world\n")
    statement = f"SELECT count(*) AS n FROM '{folder / 'notes.csv'}'"
    assert sql(workspace, statement) == 1
    err = capsys.readouterr().err
    assert "statement 1" in err and "--allow-dir" in err
    assert sql(workspace, statement, "--allow-dir", str(folder), "--csv") == 0
    assert capsys.readouterr().out == "n\n2\n"


def test_a_missing_script_file_is_an_error_line(workspace, tmp_path, capsys):
    assert sql(workspace, "-f", str(tmp_path / "nope.sql")) == 2
    assert "nope.sql" in capsys.readouterr().err


def test_the_workflow_end_to_end_on_the_tiny_model(workspace, tiny_model_dir, capsys):
    """CREATE MODEL … AS SELECT waits for its run; ML.GENERATE_TEXT over more rows than run inline is a
    job (progress on stderr); ML.EVALUATE and ML.TRAINING_INFO read the tuned model."""
    prompt = "CONCAT('Classify the text: ', input_text)"
    code = sql(workspace, f"CREATE OR REPLACE MODEL tiny_tuned OPTIONS (endpoint = '{tiny_model_dir}', "
                          "max_iterations = 2, learning_rate_multiplier = 1.0, evaluation_task = 'CLASSIFICATION') "
                          f"AS SELECT {prompt} AS prompt, output_text AS label FROM classification_train "
                          "WHERE output_text IN ('games', 'math')", "--wait", "--json")
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    run = runs.list_runs(workspace)[0]
    assert run["status"]["state"] == "succeeded" and runs.display_name(run["run_dir"]) == "tiny_tuned"

    code = sql(workspace, f"SELECT * FROM ML.GENERATE_TEXT(MODEL tiny_tuned, (SELECT {prompt} AS prompt, output_text "
                          "FROM classification_eval LIMIT 10), STRUCT(0.0 AS temperature, 4 AS max_output_tokens, "
                          "TRUE AS flatten_json_output))", "--json")
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert code == 0, captured.err
    assert "10 rows through ML.GENERATE_TEXT: job" in captured.err  # waited for, with its progress
    rows = out["results"][0]["rows"]
    assert len(rows) == 10 and {"prompt", "output_text", "ml_generate_text_llm_result",
                                "ml_generate_text_status"} <= set(rows[0])

    code = sql(workspace, f"SELECT label, f1_score FROM ML.EVALUATE(MODEL tiny_tuned, (SELECT {prompt} AS input_text, "
                          "output_text FROM classification_eval WHERE output_text IN ('games', 'math') LIMIT 6), "
                          "STRUCT('classification' AS task_type)) ORDER BY label", "--json")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = json.loads(captured.out)["results"][0]["rows"]
    assert rows and set(rows[0]) == {"label", "f1_score"}

    assert sql(workspace, "SELECT iteration, loss FROM ML.TRAINING_INFO(MODEL tiny_tuned) ORDER BY iteration") == 0
    out = capsys.readouterr().out
    assert "iteration" in out and "loss" in out and "2 rows" in out
