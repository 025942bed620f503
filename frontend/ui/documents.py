"""The PDF of a session: attached from the chat input, its pages picked in a "Pages" field under the chat, and
rendered into the message that sends them (frontend/documents.py does the work; this is the Streamlit side)."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from frontend.answer_stream import Target
from frontend.conversation import ImageAttachment
from frontend.documents import AttachedPdf, DocumentRejected, RenderedPages, is_pdf, open_pdf, page_span
from frontend.endpoint import Endpoint
from frontend.markdown import plain_text

DOCUMENT_TYPES = ["pdf"]
PAGES_KEY = "pdf-pages"
_ATTACHED = "attached_pdf"


def split_uploads(files: Sequence) -> tuple[list, list]:
    """(PDF uploads, other uploads) of a chat input submission."""
    pdfs, others = [], []
    for upload in files:
        (pdfs if is_pdf(upload.name, upload.type, upload.getvalue()[:1024]) else others).append(upload)
    return pdfs, others


def attach(uploads: Sequence, *, max_bytes: int) -> list[str]:
    """Attach the uploaded PDF (it replaces one attached before; its first pages go with this message).
    Returns the problems, each a sentence for the page; a refused file leaves the attached one as it was."""
    if len(uploads) > 1:
        names = ", ".join(upload.name for upload in uploads)
        return [f"Attach one PDF per message ({names} were attached together); send them one by one."]
    problems = []
    for upload in uploads:
        try:
            document = open_pdf(upload.getvalue(), upload.name, max_bytes=max_bytes)
        except DocumentRejected as error:
            problems.append(str(error))
            continue
        st.session_state[_ATTACHED] = AttachedPdf(document)
        st.session_state[PAGES_KEY] = ""
    return problems


def pages_for_message(
    images: Sequence[ImageAttachment], targets: Sequence[Target], *, token_budget: int
) -> RenderedPages | None:
    """What this message sends of the attached PDF, rendered into the room its images leave; None when
    nothing. Raises DocumentRejected (a bad range in Pages, no room)."""
    attached: AttachedPdf | None = st.session_state.get(_ATTACHED)
    if attached is None or not targets:
        return None
    tightest = _tightest(targets)
    with st.spinner(f"Rendering pages of {plain_text(attached.document.name)}…"):
        return attached.pages_for_message(
            st.session_state.get(PAGES_KEY, ""),
            room=tightest.image_limit - len(images),
            endpoint=tightest.name,
            image_limit=tightest.image_limit,
            token_budget=token_budget,
        )


def notice(rendered: RenderedPages, images: Sequence[ImageAttachment], targets: Sequence[Target]) -> str:
    """What the message says about the pages it carries (which, and how to send others)."""
    tightest = _tightest(targets)
    return rendered.notice(tightest.name, tightest.image_limit, other_images=len(images))


def sent(rendered: RenderedPages) -> None:
    """The message went with these pages: remember them, and empty the Pages field for the next range."""
    attached: AttachedPdf = st.session_state[_ATTACHED]
    attached.was_sent(rendered)
    st.session_state[PAGES_KEY] = ""


def _tightest(targets: Sequence[Target]) -> Endpoint:
    """The endpoint that takes the fewest images per message: what the message must fit."""
    return min(targets, key=lambda target: target.endpoint.image_limit).endpoint


def detach() -> None:
    st.session_state.pop(_ATTACHED, None)
    st.session_state[PAGES_KEY] = ""


def attached_box() -> None:
    """The attached PDF under the chat: what the next message sends of it, and the Pages field."""
    attached: AttachedPdf | None = st.session_state.get(_ATTACHED)
    if attached is None:
        return
    name, count = plain_text(attached.document.name), attached.document.page_count
    if attached.due:
        what = "its first pages (as many as the model takes) go with your next message, or type the pages you want"
    else:
        sent_pages = page_span(attached.sent)
        what = f"page(s) {sent_pages} were sent; type other pages to send them with your next message"
    st.info(f"{name} ({count} page{'s' if count != 1 else ''}) is attached: {what}.", icon="📄")
    with st.container(horizontal=True, vertical_alignment="bottom", key="attached-pdf"):
        st.text_input(
            "Pages",
            key=PAGES_KEY,
            placeholder="e.g. 3-6 or 2, 5, 7-9",
            help=f"Pages of {name} (1-{count}) to send with your next message, one image each.",
        )
        st.button("Detach the PDF", key="detach-pdf", on_click=detach)
