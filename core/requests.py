"""A request (CLI flags, page widgets, later a SQL statement) becomes a validated job config here: the
data named in it is read once, so the defaults that follow the data (label set, columns, steps) are the
same whoever asked. The defaults themselves live in core.config (TuneConfig.sft / TuneConfig.dpo)."""
from __future__ import annotations

from pathlib import Path

from core import preferences
from core.config import TuneConfig, steps_reason
from core.data import DataError, load_dataset
from core.data_formats import labeled_pairs
from core.model_size import parameter_estimate


def _absolute(path: str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None


def count_pairs(workspace: str | Path, preference_queue: str | None = None, train_file: str | None = None) -> int:
    """Usable preference pairs: a labeling queue's curated pairs, or a pairs file's rows."""
    if preference_queue:
        return len(preferences.export(workspace, preference_queue, "dpo"))
    if train_file:  # pairs without a choice wait in a labeling queue; DPO cannot use them
        return len(labeled_pairs(load_dataset(train_file, format="preference").examples))
    raise DataError("DPO needs a labeling queue (curated pairs) or a preference pairs file",
                    hint="Name a queue (--queue) or a pairs file (--train).")


def tune_config(workspace: str | Path, *, method: str = "sft", task: str, train_file: str | None = None,
                preference_queue: str | None = None, eval_file: str | None = None,
                input_column: str | None = None, output_column: str | None = None,
                **settings) -> tuple[TuneConfig, str]:
    """The run's TuneConfig and a sentence on why it has its steps. `settings`: any TuneConfig field,
    plus steps, learning_rate_multiplier, lora_rank and lora_alpha. Raises DataError (the data, with
    file/line/field) or ConfigError (a setting)."""
    train_file, eval_file = _absolute(train_file), _absolute(eval_file)
    batch = settings.get("batch_size", TuneConfig.batch_size)
    if method == "dpo":
        pairs = count_pairs(workspace, preference_queue, None if preference_queue else train_file)
        if eval_file:
            load_dataset(eval_file, format="preference")  # fail now, not in the worker
        cfg = TuneConfig.dpo(task=task, pairs=pairs, preference_queue=preference_queue,
                             train_file=None if preference_queue else train_file, eval_file=eval_file, **settings)
        source = f"queue {preference_queue}" if preference_queue else Path(train_file or "").name
        return cfg, f"{pairs} preference pairs from {source}; " + steps_reason("dpo", task, pairs, batch,
                                                                              settings.get("steps"))
    if not train_file:
        raise DataError("a training file is required for supervised tuning", hint="Name one with --train.")
    train = load_dataset(train_file, input_column, output_column)
    if eval_file:  # the worker reads it with the training columns; fail here, not there
        load_dataset(eval_file, train.input_column, train.output_column)
    cfg = TuneConfig.sft(task=task, train_file=train_file, rows=len(train), labels=train.labels,
                         eval_file=eval_file, input_column=train.input_column, output_column=train.output_column,
                         parameters=parameter_estimate(settings.get("model"), workspace), **settings)
    return cfg, steps_reason("sft", task, len(train), batch, settings.get("steps"))
