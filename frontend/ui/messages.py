"""Draw the conversation: user turns with their images, answers with thinking, stats and grounding."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st

from frontend.conversation import Answer, AnswerStats, AnswerStatus, ImageAttachment, Message
from frontend.grounding import draw_grounding, parse_grounding
from frontend.markdown import code_span, plain_text, to_streamlit_markdown

THUMBNAIL_WIDTH = 180


def image_caption(image: ImageAttachment) -> str:
    return f"{plain_text(image.name)} · {image.width}×{image.height} · {image.tokens:,} tokens"


def render_user(message: Message, actions: Callable[[], None] = lambda: None) -> None:
    with st.chat_message("user"):
        if message.text:
            st.markdown(to_streamlit_markdown(message.text))
        if message.images:
            columns = st.columns(min(len(message.images), 4))
            for index, image in enumerate(message.images):
                with columns[index % len(columns)]:
                    st.image(image.data, caption=image_caption(image), width=THUMBNAIL_WIDTH)
                    for note in image.notes:
                        st.caption(to_streamlit_markdown(note))
        for notice in message.notices:  # e.g. which pages of a PDF the images are
            st.info(to_streamlit_markdown(notice), icon="📄")
        render_videos(message)
        actions()


def render_videos(message: Message) -> None:
    """Each video as its poster frame, with duration, frames kept, token cost and what was cut."""
    for video in message.videos:
        st.image(video.poster, caption=plain_text(video.caption()), width=THUMBNAIL_WIDTH)
        if video.notes:
            st.caption(to_streamlit_markdown("Cut to the budget: " + "; ".join(video.notes)))


def stats_line(stats: AnswerStats) -> str:
    """'`tiny-qwen3-vl` · 0.21 s to first token · 85.2 tok/s · 120 prompt + 64 completion tokens · 0.9 s'."""
    model = code_span(stats.model) if stats.model else "model unknown"
    return " · ".join([model, *stats.summary()])


def render_answer(
    answer: Answer,
    *,
    key: str | None = None,
    image: ImageAttachment | None = None,
    live: bool = False,
    notice: str | None = None,
) -> None:
    """One answer. `key` names the stats container (unique per page); live redraws pass None, and `notice`:
    what the answer waits for before its first token (a switch of models)."""
    if answer.reasoning:
        with st.expander("Thinking", expanded=live and not answer.content, icon="💭"):
            st.markdown(to_streamlit_markdown(answer.reasoning))
    if answer.content:
        st.markdown(to_streamlit_markdown(answer.content))
    elif live and notice and not answer.reasoning:
        st.caption(f"⏳ {notice}")
    elif live:
        st.caption("Thinking…" if answer.reasoning else "Waiting for the first token…")
    if answer.status is AnswerStatus.STOPPED:
        st.caption("⏹ Stopped: the answer ends here.")
    elif answer.status is AnswerStatus.INTERRUPTED:
        st.warning(f"{to_streamlit_markdown(answer.error or '')} The part that arrived is kept.", icon="⚠️")
    elif answer.status is AnswerStatus.FAILED:
        st.error(to_streamlit_markdown(answer.error or "The answer failed."), icon="🚫")
    if not live and image is not None and answer.content:
        _render_grounding(answer.content, image)
    if answer.stats.model or answer.stats.total_time_s is not None:
        with st.container(key=f"answer-stats-{key}") if key else st.container():
            st.caption(stats_line(answer.stats))


def _render_grounding(content: str, image: ImageAttachment) -> None:
    marks = parse_grounding(content)
    if marks:
        drawn = draw_grounding(image.data, marks)
        st.image(drawn, caption=f"{len(marks)} box(es)/point(s) on {plain_text(image.name)}", width="content")


def render_assistant(
    message: Message,
    *,
    index: int,
    image: ImageAttachment | None,
    live: bool = False,
    actions: Callable[[], None] = lambda: None,
) -> list[st.delta_generator.DeltaGenerator]:
    """The answers side by side; returns one empty slot per answer for live redraws."""
    slots = []
    with st.chat_message("assistant"):
        for notice in message.notices:
            st.info(to_streamlit_markdown(notice), icon="🖼️")
        columns: Sequence = st.columns(len(message.answers)) if len(message.answers) > 1 else [st.container()]
        for position, (answer, column) in enumerate(zip(message.answers, columns, strict=True)):
            with column:
                if len(message.answers) > 1:
                    st.markdown(f"**{plain_text(answer.endpoint)}**")
                slot = st.empty()
                with slot.container():
                    render_answer(answer, key=None if live else f"{index}-{position}", image=image, live=live)
                slots.append(slot)
        actions()
    return slots


def turn_actions(
    message: Message,
    *,
    editable: bool,
    disabled: bool,
    on_delete: Callable[[str], None],
    on_edit: Callable[[str], None],
) -> None:
    """Small buttons under a turn: delete it (a question goes with its answer); edit the last question."""
    with st.container(horizontal=True, gap="small", key=f"turn-actions-{message.id}"):
        if editable and message.role == "user":
            st.button(
                "",
                icon=":material/edit:",
                type="tertiary",
                key=f"edit-turn-{message.id}",
                help="Change this message and send it again (its answer is replaced).",
                on_click=on_edit,
                args=(message.id,),
                disabled=disabled,
            )
        st.button(
            "",
            icon=":material/delete:",
            type="tertiary",
            key=f"delete-turn-{message.id}",
            help="Delete this message and the answer to it."
            if message.role == "user"
            else "Delete this answer.",
            on_click=on_delete,
            args=(message.id,),
            disabled=disabled,
        )


def edit_form(
    message: Message, *, on_send: Callable[[str, list[int]], None], on_cancel: Callable[[], None]
) -> None:
    """The user's last message, editable: its text, and which of its images stay."""
    text_key, images_key = f"edit-text-{message.id}", f"edit-images-{message.id}"

    def send() -> None:
        on_send(st.session_state[text_key], list(st.session_state.get(images_key, [])))

    with st.chat_message("user"), st.form(key=f"edit-form-{message.id}", border=False):
        st.text_area("Edit your message", message.text, key=text_key)
        if message.images:
            positions = list(range(len(message.images)))
            st.multiselect(
                "Images to keep",
                positions,
                default=positions,
                format_func=lambda position: plain_text(message.images[position].name),
                key=images_key,
            )
        with st.container(horizontal=True, gap="small"):
            st.form_submit_button("Send again", icon=":material/send:", type="primary", on_click=send)
            st.form_submit_button("Cancel", on_click=on_cancel)
