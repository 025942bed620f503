"""Status page: the state of each model endpoint. The chat page replaces it in a later issue.

Run from the repository root with `streamlit run frontend/app.py` (the image runs `streamlit run app.py`).
"""

import sys
from datetime import datetime
from pathlib import Path

# `streamlit run` puts this file's folder on sys.path, not its parent; the parent makes `frontend.*` importable.
if (_root := str(Path(__file__).resolve().parent.parent)) not in sys.path:
    sys.path.insert(0, _root)

import streamlit as st

from frontend.endpoint_status import EndpointStatus, State, check_endpoints
from frontend.settings import SettingsInvalid, load_settings

REFRESH_SECONDS = 10
ICONS = {State.READY: "🟢", State.LOADING: "🟡", State.DOWN: "🔴"}

st.set_page_config(page_title="Qwen3-VL", page_icon="🖼️")
st.title("Qwen3-VL")

try:
    settings = load_settings()
except SettingsInvalid as error:
    st.error(f"Configuration error: {error}")
    st.stop()


def _row(status: EndpointStatus) -> dict[str, str]:
    model = status.models[0] if status.models else None
    return {
        "Endpoint": status.endpoint.name,
        "State": f"{ICONS[status.state]} {status.state}",
        "Model": ", ".join(served.id for served in status.models) or "–",
        "Max context": f"{model.max_model_len:,} tokens" if model and model.max_model_len else "–",
        "URL": status.endpoint.base_url,
        "Details": status.reason,
    }


# A fragment re-runs on its own, so a model that finishes loading turns green without a page reload.
@st.fragment(run_every=REFRESH_SECONDS)
def endpoint_table() -> None:
    statuses = check_endpoints(settings.endpoints, settings.api_key)
    st.dataframe([_row(status) for status in statuses], hide_index=True)
    st.caption(f"Checked at {datetime.now():%H:%M:%S}, every {REFRESH_SECONDS} s.")


endpoint_table()
st.info(
    "The chat page is coming. Until then, talk to a ready model with any OpenAI-compatible client at its URL, "
    "using the model name shown above."
)
