"""Redraw streaming answers until their jobs end; a stop, a rerun or a closed tab keeps what arrived."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import streamlit as st

from frontend.answer_stream import AnswerJob
from frontend.chat_turns import finish
from frontend.ui.messages import render_answer

REDRAW_INTERVAL_S = 0.1
SAVE_INTERVAL_S = 2.0  # the partial answer survives a crash of the frontend too


def stream_into(
    jobs: Sequence[AnswerJob], slots: Sequence[st.delta_generator.DeltaGenerator], save: Callable[[], None]
) -> None:
    """Blocks until every answer is complete. Any Streamlit interruption (the Stop button, another
    widget, the session ending) arrives as an exception at a redraw; `finally` stops the streams."""
    st.button("Stop", icon="⏹", key="stop-answer", help="Stop the answer; what arrived so far is kept.")
    saved_at = time.monotonic()
    try:
        while any(job.running for job in jobs):
            _redraw(jobs, slots)
            if time.monotonic() - saved_at > SAVE_INTERVAL_S:
                save()
                saved_at = time.monotonic()
            time.sleep(REDRAW_INTERVAL_S)
        _redraw(jobs, slots)
    finally:
        finish(jobs)
        save()


def _redraw(jobs: Sequence[AnswerJob], slots: Sequence[st.delta_generator.DeltaGenerator]) -> None:
    for job, slot in zip(jobs, slots, strict=True):
        with slot.container():
            render_answer(job.answer, live=True)
