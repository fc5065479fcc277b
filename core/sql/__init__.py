"""The SQL workbench: CREATE MODEL, ML.GENERATE_TEXT, ML.EVALUATE and ML.TRAINING_INFO over the tables of
the workspace's embedded DuckDB database (core.sql.engine runs statements; the modules beside it parse,
check, and run each kind)."""
from core.sql.engine import (
    INLINE_ROWS,
    SqlError,
    SqlResult,
    history,
    list_models,
    list_tables,
    run_sql,
    split_statements,
    sql_job_result,
)

__all__ = ["INLINE_ROWS", "SqlError", "SqlResult", "history", "list_models", "list_tables", "run_sql",
           "split_statements", "sql_job_result"]
