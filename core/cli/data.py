"""`studio data`: check a dataset (the same report as the Datasets page), register it in the workspace
catalog with a split, list and delete registered datasets."""
from __future__ import annotations

import json

from core.catalog import SPLITS, delete_dataset, list_datasets, register_dataset
from core.cli.common import fail, workspace
from core.data import FORMATS, DataError, parse_dataset, printable
from core.datacheck import check_dataset, file_error_report, format_report, token_preflight
from core.models import ModelError, load_tokenizer, resolve_model
from core.names import TASKS
from core.templates import default_template


def cmd_data_check(a) -> int:
    """Exit 0: usable; 1: not usable as it is (also a file that cannot be read at all, reported like the
    rest). Anything else escaping here is a bug in the reader and is left to show its traceback."""
    try:
        report = check_dataset(a.file, task=a.task, format=a.format, input_column=a.input_column,
                               output_column=a.output_column, eval_path=a.eval)
    except DataError as e:  # check_dataset reports these itself; kept so a whole-file error is never a traceback
        report = file_error_report(a.file, e)
    if report["usable"] and a.model:  # token lengths and truncation need the model's tokenizer
        try:
            tok = load_tokenizer(resolve_model(a.model, workspace(a)))
        except ModelError as e:
            return fail(str(e))
        data, _ = parse_dataset(a.file, a.input_column, a.output_column, format=a.format)  # the valid rows
        template = a.template or default_template(a.task or "text_generation", data.labels)
        try:
            pre = token_preflight(data, tok, template, a.max_seq_length, show=1)
        except ValueError as e:  # a --template without its {input_text} placeholder
            return fail(f"--template: {e}")
        report["tokens"] = {k: v for k, v in pre.items() if not k.endswith("_tokens")}
    if a.json:
        print(printable(json.dumps(report, ensure_ascii=False)))
    else:
        print(printable(format_report(report)))
        t = report.get("tokens")
        if t:
            print(f"tokens (prompt): {t['prompt_tokens_summary']};  answers: {t['answer_tokens_summary']}")
            print(f"max length {t['max_length']}: {len(t['truncated_lines'])} examples cut, "
                  f"{len(t['dropped_lines'])} dropped (prompt alone too long)")
    return 0 if report["usable"] else 1


def cmd_data_add(a) -> int:
    try:
        entry = register_dataset(workspace(a), a.file, a.name, a.split, a.eval_fraction,
                                 a.split_column, a.input_column, a.output_column)
    except DataError as e:
        return fail(str(e))
    print(json.dumps(entry) if a.json else
          f"dataset {entry['name']}: {entry['format']}, {entry['train_rows']} train / {entry['eval_rows']} eval rows "
          f"({entry['split']})\n  {entry['train_file']}")
    return 0


def cmd_data_list(a) -> int:
    items = list_datasets(workspace(a))
    if a.json:
        print(json.dumps(list(items.values())))
    for e in ([] if a.json else items.values()):
        print(f"{e['name']:<24} {e['format']:<14} {e['train_rows']:>7} train {e['eval_rows']:>6} eval  {e['split']}")
    return 0


def cmd_data_delete(a) -> int:
    try:
        delete_dataset(workspace(a), a.name)
    except DataError as e:
        return fail(str(e))
    print(f"deleted dataset {a.name}")
    return 0


def add_parsers(sub, common) -> None:
    d = sub.add_parser("data", parents=[common], help="check and register datasets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    c = dsub.add_parser("check", parents=[common], help="report every problem and statistic; exit 1 if unusable")
    c.add_argument("file")
    c.add_argument("--format", choices=FORMATS)
    c.add_argument("--task", choices=TASKS)
    c.add_argument("--eval", help="an eval file: checked too, and for overlap with the training file")
    c.add_argument("--input-column")
    c.add_argument("--output-column")
    c.add_argument("--model", help="count tokens with this model's tokenizer (e.g. the bundled model)")
    c.add_argument("--template", help="prompt template for the token counts (default: per task)")
    c.add_argument("--max-seq-length", type=int, default=512)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_data_check)
    a = dsub.add_parser("add", parents=[common], help="register a dataset in the workspace, split into train/eval")
    a.add_argument("file")
    a.add_argument("--name", required=True)
    a.add_argument("--split", default="AUTO_SPLIT", type=str.upper, choices=SPLITS)
    a.add_argument("--eval-fraction", type=float, default=0.2)
    a.add_argument("--split-column", help="CUSTOM: boolean column (true = eval); SEQ: column to sort by")
    a.add_argument("--input-column")
    a.add_argument("--output-column")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_data_add)
    ls = dsub.add_parser("list", parents=[common], help="registered datasets")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_data_list)
    rm = dsub.add_parser("delete", parents=[common], help="remove a registered dataset")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_data_delete)


