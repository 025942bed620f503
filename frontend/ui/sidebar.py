"""The sidebar: endpoint states and the model picker, compare mode, settings, saved conversations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import streamlit as st

from frontend.answer_stream import Target
from frontend.chat_turns import image_budget
from frontend.conversation import AnswerStatus, Conversation
from frontend.endpoint_status import EndpointStatus, ReadySeen, State, check_endpoints
from frontend.export import export_file_name, export_json, export_markdown
from frontend.images import MAX_TOKEN_BUDGET, MIN_TOKEN_BUDGET
from frontend.live_answers import LiveTurn
from frontend.markdown import code_span, plain_text
from frontend.settings import FrontendSettings
from frontend.store import ConversationStore

STATUS_TTL_S = 5.0  # cached briefly: every rerun would otherwise probe each server again
ICONS = {
    State.READY: "🟢",
    State.ASLEEP: "💤",
    State.LOADING: "🟡",
    State.NOT_STARTED: "⚪",
    State.DOWN: "🔴",
}
LISTED_CONVERSATIONS = 30
WATCH_INTERVAL_S = 10.0


@st.cache_data(ttl=STATUS_TTL_S, show_spinner=False)
def endpoint_statuses(_settings: FrontendSettings, fingerprint: str) -> list[EndpointStatus]:
    """Probed in parallel with short timeouts, so a down endpoint never blocks the page for long."""
    return check_endpoints(_settings.endpoints, _settings.api_key, ready_seen())


@st.cache_resource
def ready_seen() -> ReadySeen:
    """Endpoints this page process has seen ready: nothing listening is "not started" until then."""
    return ReadySeen()


def _target(status: EndpointStatus, settings: FrontendSettings) -> Target:
    model = status.model
    return Target(
        endpoint=status.endpoint,
        api_key=settings.key_for(status.endpoint),
        model=model.id,
        max_model_len=model.max_model_len,
        awake=status.state is State.READY if model.behind_gateway else None,
    )


def _model_caption(status: EndpointStatus) -> str:
    model = status.model
    context = f" · {model.max_model_len:,} tokens context" if model.max_model_len else ""
    asleep = f"  \n{ICONS[State.ASLEEP]} {status.reason}" if status.state is State.ASLEEP else ""
    return f"{code_span(model.id)}{context}{asleep}"


def pick_targets(
    statuses: Sequence[EndpointStatus], settings: FrontendSettings, conversation: Conversation
) -> list[Target]:
    """Model picker + compare toggle. Returns the targets of the next answer ([] when none is ready).

    A model asleep behind the gateway is listed like a ready one: picking it and asking is the switch."""
    ready = [status for status in statuses if status.pickable]
    st.subheader("Models")
    for status in statuses:
        if not status.pickable:
            st.caption(f"{ICONS[status.state]} **{status.endpoint.name}** is {status.state}: {status.reason}")
    if not ready and all(status.state is State.NOT_STARTED for status in statuses):
        st.info("No model is running yet: start one as said above; this page sees it once it is ready.")
        return []
    if not ready:
        st.error("No model is ready. The states above say why; this page checks again every few seconds.")
        return []
    names = [status.endpoint.name for status in ready]
    index = names.index(conversation.endpoint) if conversation.endpoint in names else 0
    choice = st.radio(
        "Model",
        names,
        index=index,
        captions=[_model_caption(status) for status in ready],
        key=f"model-{conversation.id}",
        help="The next answer comes from this model; the conversation so far is kept. Behind the gateway, "
        "a model that is asleep is woken by your next message (the page says so while it switches).",
        label_visibility="collapsed",
    )
    if conversation.endpoint not in (None, *names):
        st.warning(
            f"{plain_text(conversation.endpoint)}, used so far in this chat, is not ready: answering with {choice}."
        )
    conversation.endpoint = choice
    compare = st.toggle(
        "Compare side by side",
        key="compare",
        disabled=len(ready) < 2,
        help="Send each message to every ready model and show the answers next to each other (one after "
        "the other where the gateway keeps one model awake at a time).",
    )
    chosen = ready if compare and len(ready) > 1 else [ready[names.index(choice)]]
    return [_target(status, settings) for status in chosen]


def settings_panel(conversation: Conversation, targets: Sequence[Target]) -> None:
    """Generation settings of this conversation; max tokens is bounded by the smallest context asked."""
    values, key = conversation.settings, conversation.id
    contexts = [target.max_model_len for target in targets if target.max_model_len]
    max_tokens_limit = min(contexts) if contexts else 262_144
    budget_limit = image_budget(MAX_TOKEN_BUDGET, targets)
    with st.expander("Settings", icon="⚙️"):
        values.system_prompt = st.text_area("System prompt", values.system_prompt, key=f"system-{key}")
        values.temperature = st.slider("Temperature", 0.0, 2.0, values.temperature, 0.05, key=f"temp-{key}")
        values.top_p = st.slider("Top p", 0.05, 1.0, values.top_p, 0.05, key=f"top-p-{key}")
        values.max_tokens = int(
            st.number_input(
                "Max tokens",
                min_value=1,
                max_value=max_tokens_limit,
                value=min(values.max_tokens, max_tokens_limit),
                key=f"max-tokens-{key}",
                help=f"Longest answer; at most the model's context ({max_tokens_limit:,} tokens).",
            )
        )
        values.image_token_budget = int(
            st.number_input(
                "Image token budget",
                min_value=MIN_TOKEN_BUDGET,
                max_value=budget_limit,
                value=min(values.image_token_budget, budget_limit),
                step=64,
                key=f"budget-{key}",
                help="Visual tokens per image: larger images are downscaled to fit. Qwen suggests 256-1280; "
                f"the model server takes at most {budget_limit:,}.",
            )
        )


def conversation_list(
    store: ConversationStore,
    owner: str,
    current: Conversation,
    *,
    on_open: Callable[[str], None],
    on_new: Callable[[], None],
    on_delete: Callable[[str], None],
) -> None:
    st.subheader("Chats")
    st.button("New chat", icon="➕", key="new-chat", on_click=on_new, width="stretch")
    for summary in store.list(limit=LISTED_CONVERSATIONS, owner=owner):
        title, delete = st.columns([6, 1], vertical_alignment="center")
        title.button(
            plain_text(summary.title),
            key=f"open-{summary.id}",
            type="primary" if summary.id == current.id else "tertiary",
            help=f"{summary.message_count} messages · {datetime.fromtimestamp(summary.updated_at):%Y-%m-%d %H:%M}",
            on_click=on_open,
            args=(summary.id,),
        )
        delete.button(
            "",
            icon=":material/delete:",  # Streamlit ships the Material Symbols font: it renders offline
            key=f"delete-{summary.id}",
            help="Delete this chat",
            on_click=on_delete,
            args=(summary.id,),
        )


def chat_actions(conversation: Conversation, *, on_clear: Callable[[], None], disabled: bool) -> None:
    """Export and clear the open conversation (clearing waits while an answer streams)."""
    if not conversation.messages:
        return
    st.subheader("This chat")
    json_column, markdown_column = st.columns(2)
    json_column.download_button(
        "JSON",
        export_json(conversation),
        file_name=export_file_name(conversation, "json"),
        mime="application/json",
        icon="⬇️",
        help="Everything, images included; a complete record of the chat.",
    )
    markdown_column.download_button(
        "Markdown",
        export_markdown(conversation),
        file_name=export_file_name(conversation, "md"),
        mime="text/markdown",
        icon="⬇️",
        help="A readable transcript.",
    )
    st.button(
        "Clear chat", icon="🧹", on_click=on_clear, key="clear-chat", width="stretch", disabled=disabled
    )


def chat_import(*, on_upload: Callable[[str], None], problem: str | None) -> None:
    """Open a chat exported as JSON (images included) as a new chat."""
    key = f"import-{st.session_state.get('import_round', 0)}"
    with st.expander("Import a chat", icon=":material/upload_file:", expanded=problem is not None):
        st.file_uploader(
            "A JSON export of this page",
            type=["json"],
            key=key,
            on_change=on_upload,
            args=(key,),
            help="Opens it as a new chat: every turn, image and setting as exported.",
        )
        if problem:
            st.error(problem, icon="🚫")


def reset_import() -> None:
    """An imported file is read once: the next run draws a fresh, empty uploader."""
    st.session_state["import_round"] = st.session_state.get("import_round", 0) + 1


def after_answer(turn: LiveTurn, targets: Sequence[Target]) -> None:
    """Probe again at the next run when the states shown may be wrong now: an answer failed (the server may
    be down or serve another model), or the gateway switched models to answer."""
    failed = any(
        answer.status in (AnswerStatus.FAILED, AnswerStatus.INTERRUPTED) for answer in turn.message.answers
    )
    if failed or any(target.awake is False for target in targets):
        endpoint_statuses.clear()


def watch_endpoints(statuses: Sequence[EndpointStatus], settings: FrontendSettings) -> None:
    """While a model is not ready, look again every few seconds and redraw the page when that changes.
    Asleep counts as ready here: models switching at the gateway do not redraw the page each time."""
    ready = {status.endpoint.name for status in statuses if status.pickable}
    if len(ready) == len(statuses):
        return

    @st.fragment(run_every=WATCH_INTERVAL_S)
    def watch() -> None:
        endpoint_statuses.clear()
        statuses_now = check_endpoints(settings.endpoints, settings.api_key, ready_seen())
        now = {status.endpoint.name for status in statuses_now if status.pickable}
        if now != ready:
            st.rerun()

    watch()
