"""The SQL workbench end to end on the tiny model: the example script (CREATE MODEL, CREATE MODEL … AS
SELECT, ML.GENERATE_TEXT, ML.EVALUATE, ML.TRAINING_INFO) through run_sql, a result saved with CREATE
TABLE … AS SELECT, and a statement over many rows as a job of the real queue and worker."""
import json
import subprocess
import sys
from types import SimpleNamespace

import pandas as pd
import pytest

from core import jobs, runs
from core.config import EvalConfig, GenerationConfig
from core.sql import (
    INLINE_ROWS,
    SqlError,
    history,
    list_models,
    list_tables,
    run_sql,
    split_statements,
    sql_job_result,
    tuning,
)
from core.sql import models as sql_models

PROMPT = ("Classify the text into one of these categories: games, math, science. "
          "Answer with the category name only.\\n\\nText: ")
THREE = "output_text IN ('games', 'math', 'science')"
EVAL_INPUT = f"SELECT CONCAT(e'{PROMPT}', input_text) AS input_text, output_text FROM classification_eval WHERE {THREE}"
EXAMPLE = f"""
CREATE OR REPLACE MODEL base_model OPTIONS (endpoint = '{{model}}');

CREATE OR REPLACE MODEL sections_tuned
OPTIONS (endpoint = '{{model}}', prompt_col = 'prompt', input_label_cols = ['label'],
         max_iterations = 2, learning_rate_multiplier = 1.0, data_split_method = 'AUTO_SPLIT',
         evaluation_task = 'CLASSIFICATION', batch_size = 4, device = 'cpu')
AS SELECT CONCAT(e'{PROMPT}', input_text) AS prompt, output_text AS label
   FROM classification_train WHERE {THREE};

SELECT * FROM ML.GENERATE_TEXT(MODEL sections_tuned,
  (SELECT CONCAT(e'{PROMPT}', input_text) AS prompt, output_text FROM classification_eval WHERE {THREE} LIMIT 4),
  STRUCT(0.0 AS temperature, 8 AS max_output_tokens, TRUE AS flatten_json_output));

-- ML.EVALUATE over 18 rows: more than INLINE_ROWS, so a job of the queue, waited for
SELECT label, f1_score FROM ML.EVALUATE(MODEL sections_tuned, ({EVAL_INPUT}),
  STRUCT('classification' AS task_type)) WHERE f1_score < 0.5 ORDER BY f1_score;

SELECT * FROM ML.TRAINING_INFO(MODEL sections_tuned);
"""


@pytest.fixture(scope="module")
def example(tmp_path_factory, tiny_model_dir):
    ws = tmp_path_factory.mktemp("sql") / "ws"
    ws.mkdir()
    events = []
    results = run_sql(ws, EXAMPLE.format(model=tiny_model_dir), wait=True, progress=events.append)
    return SimpleNamespace(ws=ws, results=results, events=events, model=tiny_model_dir)


def tuned_run(example):
    return runs.run_path(example.ws, sql_models.read_registry(example.ws)["sections_tuned"]["run_id"])


def test_the_example_script_runs_end_to_end(example):
    base, create, generate, evaluate, info = example.results
    assert [r.kind for r in example.results] == ["done", "done", "rows", "rows", "rows"]
    assert base.message.startswith("Created model base_model: base model")
    assert "succeeded after 2 steps" in create.message
    run_dir = tuned_run(example)
    assert create.job_dir == str(run_dir) and runs.display_name(run_dir) == "sections_tuned"  # a run like any other
    config = runs.read_json(run_dir / "config.json")
    assert config["template"] == "{input_text}" and config["max_iterations"] == 2 and config["task"] == "classification"
    assert config["labels"] == ["games", "math", "science"]
    train = runs.read_jsonl(config["train_file"])
    assert len(train) == 74 and train[0]["input_text"].startswith("Classify the text into one of these categories")
    assert "\n\nText: " in train[0]["input_text"]  # the SQL string's \n became a newline, taught as written
    assert any(e["done"] == 2 and e["total"] == 2 for e in example.events)  # the run's progress was reported
    assert list(generate.frame.columns) == ["ml_generate_text_llm_result", "ml_generate_text_status", "prompt",
                                            "output_text"]
    assert len(generate.frame) == 4 and (generate.frame["ml_generate_text_status"] == "").all()
    assert list(evaluate.frame.columns) == ["label", "f1_score"]
    assert list(evaluate.frame["f1_score"]) == sorted(evaluate.frame["f1_score"]) and (evaluate.frame["f1_score"] < 0.5).all()
    assert list(info.frame.columns) == ["training_run", "iteration", "loss", "eval_loss", "learning_rate", "duration_ms"]
    assert list(info.frame["iteration"]) == [1, 2] and info.frame["loss"].notna().all()
    models = {m["name"]: m for m in list_models(example.ws)}
    assert models["sections_tuned"]["state"] == "succeeded" and models["sections_tuned"]["task"] == "classification"
    assert models["base_model"]["run_id"] is None and models["base_model"]["state"] == "ready"
    assert [h["state"] for h in history(example.ws)][:5] == ["succeeded"] * 5


def test_ml_evaluate_over_many_rows_ran_as_a_job_of_the_queue(example):
    job_dir = example.results[3].job_dir
    assert jobs.read_job(job_dir)["kind"] == "sql"
    status = runs.read_status(job_dir)
    assert status["state"] == "succeeded" and status["done"] == status["total"] == 18 > INLINE_ROWS
    saved = runs.read_json(f"{job_dir}/result.json")
    assert saved["columns"] == ["label", "f1_score"] and saved["rows"] == len(example.results[3].frame)
    assert sql_job_result(job_dir).frame.equals(example.results[3].frame)


def test_ml_evaluate_equals_studio_evaluate_on_the_same_rows(example, tmp_path):
    from core.evaluate import run_evaluation

    rows = run_sql(example.ws, EVAL_INPUT)[0].frame
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows.to_dict("records")), encoding="utf-8")
    # `studio evaluate --run RUN --template '{input_text}'`: the base model and the run, on these rows
    studio = run_evaluation(example.ws, EvalConfig(data=str(data), task="classification", run_id=tuned_run(example).name,
                                                   template="{input_text}"), tmp_path / "eval")["tuned"]
    per_label = {r["label"]: r for r in studio["per_label"]}
    sql = example.results[3].frame
    assert {r.label: r.f1_score for r in sql.itertuples()} == {k: r["f1_score"] for k, r in per_label.items()
                                                              if r["f1_score"] < 0.5}
    # every per-label number of the job's evaluation (the SQL kept two columns of it) equals the studio's
    job_metrics = runs.read_json(f"{example.results[3].job_dir}/evaluate-1/metrics.json")
    assert "base" not in job_metrics  # only the model named was scored
    assert job_metrics["tuned"]["per_label"] == studio["per_label"]
    assert job_metrics["tuned"]["evaluation_status"] == {"num_successful_rows": 18, "num_total_rows": 18}


def test_ml_generate_text_asks_exactly_the_selects_prompt_through_the_chat_template(example, monkeypatch):
    import core.generate
    from core.models import load_model
    from core.templates import render_chat_prompt

    sent = []
    real = core.generate.generate_texts

    def recording(model, tokenizer, prompts, cfg=None, **kw):
        sent.extend(prompts)
        return real(model, tokenizer, prompts, cfg, **kw)

    monkeypatch.setattr(core.generate, "generate_texts", recording)
    statement = ("SELECT * FROM ML.GENERATE_TEXT(MODEL sections_tuned, (SELECT prompt FROM (VALUES "
                 "('Say {input_text} and 100% ''quoted'''), ('Zwei\nZeilen'), (NULL), ('  ')) AS t(prompt)), "
                 "STRUCT(6 AS max_output_tokens, TRUE AS flatten_json_output))")
    frame = run_sql(example.ws, statement)[0].frame
    lm, tokenizer, _ = load_model(str(example.model), example.ws, "cpu", adapter=tuned_run(example) / "adapter")
    given = ["Say {input_text} and 100% 'quoted'", "Zwei\nZeilen"]
    assert sent == [render_chat_prompt(tokenizer, [{"role": "user", "content": p}]) for p in given]
    assert given[0] in sent[0] and "<|im_start|>user\n" in sent[0]
    expected = real(lm, tokenizer, sent, GenerationConfig(max_output_tokens=6))
    assert list(frame["ml_generate_text_llm_result"][:2]) == expected
    assert list(frame["ml_generate_text_status"]) == ["", "", "the prompt is NULL", "the prompt is empty"]
    assert frame["ml_generate_text_llm_result"][2:].isna().all()  # a bad row never fails the statement


def test_results_saved_with_create_table_and_json_output(example):
    done, = run_sql(example.ws, "CREATE TABLE answers AS SELECT * FROM ML.GENERATE_TEXT(MODEL base_model, "
                                "(SELECT input_text AS prompt FROM classification_eval LIMIT 3), STRUCT(4 AS max_output_tokens))")
    assert done.kind == "done" and done.message == "Created table answers (3 rows)."
    frame = run_sql(example.ws, "SELECT ml_generate_text_result, ml_generate_text_status FROM answers")[0].frame
    parsed = [json.loads(x) for x in frame["ml_generate_text_result"]]
    assert all(isinstance(p["candidates"][0]["content"]["parts"][0]["text"], str) for p in parsed)
    tables = {t["name"]: t for t in list_tables(example.ws)}
    assert tables["answers"]["kind"] == "table" and tables["answers"]["rows"] == 3
    assert tables["classification_train"] == {"name": "classification_train", "kind": "sample",
                                              "columns": ["input_text", "output_text"], "rows": 400}


def test_a_script_queued_in_order_generates_after_the_tuning_run(example):
    """Without waiting: CREATE MODEL … AS SELECT queues a run, and ML.GENERATE_TEXT over more than
    INLINE_ROWS rows of that model becomes a job queued behind it, in the same device queue."""
    tune, generate = run_sql(example.ws, f"""
        CREATE MODEL second OPTIONS (endpoint = '{example.model}', max_iterations = 1, batch_size = 4, device = 'cpu')
        AS SELECT input_text AS prompt, output_text AS label FROM classification_train LIMIT 12;
        SELECT prompt, ml_generate_text_status FROM ML.GENERATE_TEXT(MODEL second, (SELECT input_text AS prompt
        FROM summarization_eval LIMIT 9), STRUCT(2 AS max_output_tokens, TRUE AS flatten_json_output))""")
    assert tune.kind == "job" and "(1 step; 12 training rows" in tune.message and generate.kind == "job"
    assert "9 rows through ML.GENERATE_TEXT" in generate.message and generate.message.endswith("queued.")
    assert sql_job_result(generate.job_dir) is None  # still waiting
    assert history(example.ws, 1)[0]["job_dir"] == generate.job_dir
    assert jobs.wait(generate.job_dir, poll=0.5, timeout=300)["state"] == "succeeded", runs.log_tail(generate.job_dir)
    run, job = runs.read_status(tune.job_dir), runs.read_status(generate.job_dir)
    assert run["state"] == "succeeded" and run["finished"] <= job["started"]
    done = sql_job_result(generate.job_dir)
    assert done.kind == "rows" and len(done.frame) == 9 and list(done.frame.columns) == ["prompt", "ml_generate_text_status"]
    assert history(example.ws, 1)[0]["state"] == "succeeded" and history(example.ws, 1)[0]["rows"] == 9


def test_ml_evaluate_for_text_tasks_has_the_reference_columns(example):
    frame = run_sql(example.ws, "SELECT * FROM ML.EVALUATE(MODEL base_model, (SELECT input_text, output_text FROM "
                                "summarization_eval LIMIT 1), STRUCT('summarization' AS task_type))")[0].frame
    assert list(frame.columns) == ["rouge-l_precision", "rouge-l_recall", "rouge-l_f1_score", "bleu4_score",
                                   "evaluation_status"]
    assert json.loads(frame["evaluation_status"][0]) == {"num_successful_rows": 1, "num_total_rows": 1}


# ---------------------------------------------------------------- no model needed

def test_model_names_map_to_runs_and_base_models(tmp_path):
    ws = tmp_path / "ws"
    page_run = runs.create_run(ws, {"task": "summarization", "model": "bundled:SmolLM2-135M-Instruct"}, name="made_on_tune_page")
    run_sql(ws, "CREATE MODEL bundled OPTIONS (endpoint = 'bundled:SmolLM2-135M-Instruct')")
    assert not (ws / "models").exists()  # registering never loads nor converts the model
    assert sql_models.resolve(ws, "made_on_tune_page", "MODEL").run_id == page_run.name  # a Tune page run by its name
    assert {m["name"]: m["source"] for m in list_models(ws)} == {"bundled": "sql", "made_on_tune_page": "run"}
    run_sql(ws, "CREATE OR REPLACE MODEL bundled OPTIONS (endpoint = 'made_on_tune_page', evaluation_task = 'SUMMARIZATION')")
    entry = sql_models.read_registry(ws)["bundled"]
    assert entry["endpoint"] == f"run:{page_run.name}" and entry["task"] == "summarization"  # tuned on top of the run
    assert run_sql(ws, "CREATE MODEL IF NOT EXISTS bundled OPTIONS (endpoint = 'x/y')")[0].message.endswith("nothing changed.")
    run_sql(ws, f"CREATE MODEL named_run OPTIONS (endpoint = 'run:{page_run.name}')")
    assert run_sql(ws, "DROP MODEL bundled")[0].message == "Dropped model bundled: the name only."
    assert page_run.is_dir() and "bundled" not in sql_models.read_registry(ws)


def test_split_options_follow_the_catalog(tmp_path):
    frame = pd.DataFrame({"prompt": [f"p{i}" for i in range(20)], "label": ["a", "b"] * 10,
                          "held": [i >= 15 for i in range(20)], "order": list(range(20, 0, -1))})
    base = {"prompt_col": "prompt", "input_label_cols": ["label"], "data_split_eval_fraction": 0.2}
    rows, values = tuning.training_rows(frame, {**base, "data_split_method": "CUSTOM", "data_split_col": "held"})
    train, held = tuning.split(rows, {**base, "data_split_method": "CUSTOM", "data_split_col": "held"}, values)
    assert [r["input_text"] for r in held] == ["p15", "p16", "p17", "p18", "p19"] and len(train) == 15
    rows, values = tuning.training_rows(frame, {**base, "data_split_method": "SEQ", "data_split_col": "order"})
    train, held = tuning.split(rows, {**base, "data_split_method": "SEQ", "data_split_col": "order"}, values)
    assert [r["input_text"] for r in held] == ["p3", "p2", "p1", "p0"]  # the last by the order column
    rows, _ = tuning.training_rows(frame, {**base, "data_split_method": "NO_SPLIT", "data_split_col": None})
    assert tuning.split(rows, {**base, "data_split_method": "NO_SPLIT", "data_split_col": None}, None)[1] == []


def test_statements_split_at_semicolons_outside_strings_and_comments():
    script = "SELECT 'a;b' AS x; -- a comment; still a comment\nSELECT \"c;d\" FROM t; /* ; */ ; SELECT $$e;f$$;;"
    assert split_statements(script) == ["SELECT 'a;b' AS x", "-- a comment; still a comment\nSELECT \"c;d\" FROM t",
                                        "SELECT $$e;f$$"]
    with pytest.raises(SqlError) as caught:
        split_statements("SELECT 1; SELECT 'open")
    assert caught.value.statement == 2 and caught.value.clause == "line 1, column 18"


def test_the_sql_package_loads_without_torch():
    code = "import sys, core.sql, core.sql.engine; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, check=False).returncode == 0


def test_a_run_is_evaluated_within_the_length_it_was_tuned_at(example, tmp_path):
    """A run tuned at max_seq_length N is asked with prompts of at most N tokens less its longest label;
    the rows cut short are counted in metrics.json."""
    import shutil

    from core.evaluate import run_evaluation
    from core.generate import label_sequences
    from core.models import load_tokenizer

    rows = run_sql(example.ws, EVAL_INPUT)[0].frame
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows.to_dict("records")), encoding="utf-8")
    short = example.ws / "runs" / "short-run"
    shutil.copytree(tuned_run(example), short)
    config = runs.read_json(short / "config.json")
    runs.write_json(short / "config.json", {**config, "max_seq_length": 48})
    tok = load_tokenizer(config["model"])
    run_evaluation(example.ws, EvalConfig(data=str(data), task="classification", run_id="short-run",
                                          template="{input_text}"), tmp_path / "eval")
    metrics = runs.read_json(tmp_path / "eval" / "metrics.json")
    assert metrics["max_prompt_tokens"] == 48 - max(map(len, label_sequences(tok, config["labels"])))
    assert 0 < metrics["shortened_rows"] <= len(rows) and metrics["tuned"]["evaluation_status"]["num_successful_rows"] == len(rows)
    shutil.rmtree(short)
