"""`studio` command line. Everything the browser does, this does too; `--json` gives machine-readable
output. One module per task: models (serve, tune, evaluate, generate), distill (teacher → student),
runs (runs and the job queue), data (datasets), prefs (preference pairs), sql (statements over the
workspace's tables), embed (embedding-model tuning), export (adapter, merged, GGUF),
images (image-model LoRA tuning)."""
from __future__ import annotations

import argparse
import sys

from core.cli import executor
from core.cli import data, distill, embed, export, images, models, prefs, runs, sql


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="studio", description="Tuning Studio: LoRA tuning and base-vs-tuned comparison.")
    p.add_argument("--workspace", help="workspace folder (default: $STUDIO_WORKSPACE or ./workspace)")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)  # --workspace also works after the subcommand
    common.add_argument("--workspace", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    for module in (models, distill, runs, data, prefs, sql, embed, export, images):
        module.add_parsers(sub, common)
    executor.add_parsers(sub, common)  # where queued jobs run: this machine or a Ray cluster
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
