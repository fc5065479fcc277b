"""The cards of the Datasets page that write: a fixed copy from the safe fixes, the split settings and
registering (core.catalog), and the list of registered datasets with open and delete."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import catalog, inventory
from core.data import DataError
from studio import cached, ui
from studio.dataset_views import FORMAT_NAMES

SPLIT_HELP = {
    "AUTO_SPLIT": "Fewer than 500 rows: all train; 500–50,000 rows: 20% eval; more: 10,000 eval rows.",
    "RANDOM": "A random share of the rows goes to eval; the same rows every time.",
    "CUSTOM": "A true/false column decides: true (or 1, yes, eval) means eval.",
    "SEQ": "Rows sorted by a column (a date, an id); the last share goes to eval.",
    "NO_SPLIT": "Every row trains; nothing is held out.",
}


def fixes_section(report: dict, path: str, ctx: dict) -> None:
    """The safe fixes as checkboxes; ticked ones are applied to a copy that is registered, never to the file."""
    fixes = report.get("fixes", [])
    if not fixes:
        return
    st.markdown("**Safe fixes**")
    split = "the eval file is the eval set" if ctx["eval_path"] else ctx["split"]
    st.caption("Ticked fixes are applied to a copy that is registered in the catalog; your file stays as it is. "
               f"The copy is split as set under *Split and register* ({split}).")
    chosen = []
    for f in fixes:
        forced = f["fix"] == "drop_invalid"  # a copy can only hold rows that can be read
        if st.checkbox(f["label"], value=forced, disabled=forced, key=f"ds_fix::{path}::{f['fix']}",
                       help="Rows with problems can never be part of a copy." if forced else None):
            chosen.append(f["fix"])
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    name = c1.text_input("Name of the fixed copy", value=inventory.dataset_name(path, "-fixed"),
                         key=f"ds_fixname::{path}")
    if c2.button("Save a fixed copy", icon=":material/auto_fix_high:", key=f"ds_fixsave::{path}",
                 disabled=not chosen, width="stretch"):
        save(name, lambda: register(path, name, ctx, fixes=chosen), where=f"fix::{path}")
    saved_message(f"fix::{path}")


def split_settings(path: str, columns: list[str], eval_path: str | None) -> dict:
    """The split widgets; their values, also read by the fixed-copy button of the Check card."""
    c = st.columns([2, 2, 1, 2])
    name = c[0].text_input("Name", value=inventory.dataset_name(path), key=f"ds_regname::{path}",
                           help="Letters, digits, '.', '-' and '_'; the name Tune, Evaluate and Playground show.")
    use_eval = bool(eval_path) and st.checkbox(f"Use the eval file `{Path(eval_path).name}` as the eval set "
                                               "instead of a split", value=True, key=f"ds_regeval::{path}")
    method = c[1].selectbox("Split method", catalog.SPLITS, key=f"ds_split::{path}", disabled=use_eval,
                            help="data_split_method: how rows are divided into train and eval.")
    fraction = c[2].number_input("Eval fraction", 0.01, 0.9, 0.2, step=0.05, key=f"ds_frac::{path}",
                                 disabled=use_eval or method not in ("RANDOM", "SEQ"))
    column = c[3].selectbox("Split column", columns, key=f"ds_splitcol::{path}",
                            disabled=use_eval or method not in ("CUSTOM", "SEQ"),
                            help="CUSTOM: a true/false column; SEQ: the column to sort by.")
    if not use_eval:
        st.caption(f":material/info: **{method}:** {SPLIT_HELP[method]}")
    return {"name": name.strip(), "split": catalog.EVAL_FILE if use_eval else method, "fraction": float(fraction),
            "column": column if method in ("CUSTOM", "SEQ") and not use_eval else None,
            "eval_path": eval_path if use_eval else None}


def register(path: str, name: str, ctx: dict, fixes: list[str] | None = None) -> dict:
    """core.catalog.register_file with the widgets' values; `fixes` make it a fixed copy."""
    return catalog.register_file(cached.workspace(), path, name, format=ctx["format"], columns=ctx["columns"],
                                 split=ctx["split"], eval_fraction=ctx["fraction"], split_column=ctx["column"],
                                 eval_path=ctx["eval_path"], fixes=fixes)


def save(name: str, do, where: str) -> None:
    """Run a registration; on success rerun so the catalog list above shows it, and say so at `where`."""
    replacing = name in catalog.list_datasets(cached.workspace())
    try:
        entry = do()
    except DataError as e:
        ui.show_data_error(e)
        return
    st.session_state[f"ds_saved::{where}"] = (
        f"Registered **{entry['name']}**{' (replacing the earlier one)' if replacing else ''}: {entry['train_rows']:,} "
        f"train / {entry['eval_rows']:,} eval rows. It is now in the dataset pickers of Tune, Evaluate and Playground.")
    st.rerun()


def saved_message(where: str) -> None:
    text = st.session_state.pop(f"ds_saved::{where}", None)
    if text:
        st.success(text, icon=":material/inventory:")


def register_card(path: str, report: dict, ctx: dict) -> None:
    valid, rows = report["valid_rows"], report["rows"]
    try:
        if ctx["eval_path"]:
            train_n, eval_n = valid, len(cached.valid_examples(ctx["eval_path"], *ctx["columns"], ctx["format"]))
        else:
            train_n, eval_n = cached.split_counts(path, ctx["split"], ctx["fraction"], ctx["column"], ctx["format"],
                                              *ctx["columns"])
    except DataError as e:
        ui.show_data_error(e)
        return
    except (TypeError, ValueError, KeyError) as e:
        st.error(f"**Cannot split with these settings:** {e}", icon=":material/error:")
        return
    c1, c2 = st.columns([3, 1], vertical_alignment="center")
    c1.markdown(f"Preview: **{train_n:,} train** · **{eval_n:,} eval** rows"
                + (" (from the eval file)" if ctx["eval_path"] else ""))
    just_saved = f"ds_saved::register::{path}" in st.session_state  # the success below says it: no warning
    if ctx["name"] in catalog.list_datasets(cached.workspace()) and not just_saved:
        c1.caption(f":material/warning: A dataset named `{ctx['name']}` is registered already; registering replaces it.")
    blocked = valid < rows
    if blocked:
        c1.caption(f":material/block: {rows - valid} rows have problems: fix them in the file, or save a fixed copy "
                   "in the Check card above (it leaves them out).")
    if c2.button("Register", type="primary", icon=":material/inventory:", key=f"ds_register::{path}",
                 disabled=blocked or not valid, width="stretch"):
        save(ctx["name"], lambda: register(path, ctx["name"], ctx), where=f"register::{path}")
    saved_message(f"register::{path}")


def _open(entry: dict) -> None:
    st.session_state["active_dataset"] = st.session_state["ds_pick"] = entry["train_file"]
    st.session_state["ds_delete"] = None


def _delete(name: str) -> None:
    try:
        catalog.delete_dataset(cached.workspace(), name)
    except DataError as e:
        st.session_state["ds_delete_error"] = str(e)
    st.session_state["ds_delete"] = None


def catalog_list() -> None:
    """Registered datasets, one row each, with Open and Delete (which asks first)."""
    entries = catalog.list_datasets(cached.workspace())
    if not entries:
        return
    st.subheader("Registered datasets")
    st.caption("Normalised, split copies in the workspace catalog. Tune, Evaluate and Playground list them as "
               "*name · registered*.")
    if st.session_state.get("ds_delete_error"):
        st.error(st.session_state.pop("ds_delete_error"))
    widths = [3, 2.6, 1, 1.8, 2, 2.6, 1.5, 1.6]
    with st.container(border=True):
        head = st.columns(widths)
        for col, title in zip(head, ["Name", "Format", "Rows", "Train / eval", "Split", "Created"]):
            col.caption(f"**{title}**")
        for name, e in sorted(entries.items(), key=lambda kv: kv[1].get("created", ""), reverse=True):
            row = st.columns(widths, vertical_alignment="center")
            row[0].markdown(f"**{name}**")
            row[1].markdown(FORMAT_NAMES.get(e.get("format"), e.get("format", "?")))
            row[2].markdown(f"{e.get('rows', 0):,}")
            row[3].markdown(f"{e.get('train_rows', 0):,} / {e.get('eval_rows', 0):,}")
            row[4].markdown(f"`{e.get('split', '?')}`")
            row[5].markdown(str(e.get("created", ""))[:16].replace("T", " "))
            row[6].button("Open", key=f"ds_open::{name}", on_click=_open, args=(e,), width="stretch",
                          help="Inspect it below.")
            row[7].button("Delete", key=f"ds_del::{name}", width="stretch",
                          on_click=lambda n=name: st.session_state.update(ds_delete=n))
            if st.session_state.get("ds_delete") == name:
                with st.container(border=True):
                    ui.confirm_delete("ds_delete", name, f"Delete **{name}**? Its train/eval copies in the catalog "
                                      "are removed; the source file and finished runs stay.", _delete, (name,),
                                      key="ds")
