"""Draw a streaming turn until it ends. The stream does not depend on this: a click elsewhere, a reload or a
closed tab ends only the drawing (the next page run picks it up again); only the Stop button stops it."""

from __future__ import annotations

import time
from collections.abc import Sequence

import streamlit as st

from frontend.live_answers import LiveTurn
from frontend.ui.messages import render_answer

REDRAW_INTERVAL_S = 0.1


def follow(turn: LiveTurn, slots: Sequence[st.delta_generator.DeltaGenerator]) -> None:
    """Redraw the turn's answers into `slots` until every one has ended and the turn is saved. A widget
    interaction interrupts this run with Streamlit's rerun exception at a redraw, and nothing else happens."""
    st.button(
        "Stop",
        icon="⏹",
        key="stop-answer",
        help="Stop the answer; what arrived so far is kept.",
        on_click=turn.stop,
    )
    while turn.active:
        _redraw(turn, slots)
        time.sleep(REDRAW_INTERVAL_S)
    _redraw(turn, slots)


def _redraw(turn: LiveTurn, slots: Sequence[st.delta_generator.DeltaGenerator]) -> None:
    for answer, notice, slot in zip(turn.message.answers, turn.notices(), slots, strict=True):
        with slot.container():
            render_answer(answer, live=True, notice=notice)
