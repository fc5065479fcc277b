"""Tuning Studio in the browser: page setup and navigation only; each page is one user task."""
import streamlit as st
from streamlit.runtime.scriptrunner import RerunException, StopException

from studio import queue_views, ui

st.set_page_config(page_title="Tuning Studio", page_icon=":material/tune:", layout="wide")
page = st.navigation([
    st.Page("app_pages/datasets.py", title="Datasets", icon=":material/dataset:", default=True),
    st.Page("app_pages/tune.py", title="Tune", icon=":material/model_training:"),
    st.Page("app_pages/distill.py", title="Distill", icon=":material/school:"),
    st.Page("app_pages/playground.py", title="Playground", icon=":material/forum:"),
    st.Page("app_pages/evaluate.py", title="Evaluate", icon=":material/analytics:"),
    st.Page("app_pages/embeddings.py", title="Embeddings", icon=":material/manage_search:"),
    st.Page("app_pages/images.py", title="Images", icon=":material/image:"),
    st.Page("app_pages/sql.py", title="SQL", icon=":material/database:"),
    st.Page("app_pages/runs.py", title="Runs", icon=":material/history:"),
    st.Page("app_pages/preferences.py", title="Preferences", icon=":material/thumbs_up_down:"),
])
ui.sidebar()
with st.sidebar:  # on every page: what runs in the background, and where to see it
    queue_views.sidebar_work(ui.workspace())
try:
    page.run()
except (RerunException, StopException):  # st.rerun / st.stop / st.switch_page: Streamlit's control flow
    raise
except Exception as e:  # noqa: BLE001 -- anything else: a short error with details, not a bare traceback
    ui.show_unexpected_error(e)
