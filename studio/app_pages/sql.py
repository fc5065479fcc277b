"""SQL: the studio's workflow as statements over tables. The samples and registered datasets are tables
in the workspace's DuckDB database; CREATE MODEL tunes a model, ML.GENERATE_TEXT answers rows,
ML.EVALUATE scores it, ML.TRAINING_INFO shows its curve. Statements that take long run as background
jobs with their progress here. The parts live in studio/sql_views.py and studio/sql_catalog_views.py."""
from __future__ import annotations

import streamlit as st

from studio import cached, sql_catalog_views, sql_views
from studio.sql_views import BATCH, EDITOR, PENDING, SCRIPT

st.title("SQL")
st.caption("Your examples are tables: tune a model with `CREATE MODEL`, answer rows with `ML.GENERATE_TEXT`, "
           "score it with `ML.EVALUATE` and read its curve with `ML.TRAINING_INFO`, and filter, join or save "
           "any result with plain SQL (DuckDB).")
ws = cached.workspace()

if EDITOR not in st.session_state:  # the editor keeps its script while other pages are open
    st.session_state[EDITOR] = st.session_state.get(SCRIPT, sql_views.EXAMPLE_SCRIPT)

# A SQL editor reads best in a fixed-width font (the text area's own style is the page's sans serif).
st.html("<style>.st-key-sql_editor textarea {font-family: 'Source Code Pro', ui-monospace, monospace; "
        "font-size: 0.85rem; line-height: 1.45;}</style>")
editor, side = st.columns([3, 1], gap="medium")
with editor:
    with st.form("sql_form", border=False):
        st.text_area("Statements", key=EDITOR, height=380, label_visibility="collapsed",
                     placeholder="SELECT * FROM classification_train LIMIT 10;",
                     help="Several statements separated by `;` run in order. Ctrl+Enter runs the script.")
        b1, b2, b3 = st.columns([1, 1.5, 3], vertical_alignment="center")
        run_all = b1.form_submit_button("Run", type="primary", icon=":material/play_arrow:", width="stretch")
        run_last = b2.form_submit_button("Run last statement", icon=":material/last_page:", width="stretch",
                                         help="Only the script's last statement: the one just written, usually.")
        b3.caption("**Ctrl+Enter** runs the whole script · DuckDB SQL plus `CREATE MODEL`, `ML.GENERATE_TEXT`, "
                   "`ML.EVALUATE`, `ML.TRAINING_INFO`")
    if run_all or run_last:
        text = st.session_state[SCRIPT] = st.session_state[EDITOR]
        sql_views.start(sql_views.last_statement(text) if run_last else text)
    elif st.session_state.get(PENDING):
        sql_views.start(st.session_state.pop(PENDING))
    if st.session_state.get(BATCH):  # before the lists beside: a statement may make a table or a model
        sql_views.advance(ws, st.session_state[BATCH])
with side:
    with st.container(border=True):
        sql_catalog_views.models_panel(ws)
    with st.container(border=True):
        sql_catalog_views.tables_panel(ws)

batch = st.session_state.get(BATCH)
results, history = st.tabs([":material/table_view: Results", ":material/history: History"])
with results:
    if batch is None:
        st.info("Run the script above: its result tables, messages and the progress of long statements show "
                "here.", icon=":material/info:")
    else:
        sql_views.results(ws, batch)
with history:
    sql_catalog_views.history_panel(ws)
