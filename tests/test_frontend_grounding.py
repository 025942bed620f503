"""Qwen3-VL grounding: parsing boxes and points out of answers, and drawing them."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image
from pydantic import ValidationError

from frontend import grounding
from frontend.grounding import GroundingMark, draw_grounding, parse_grounding

WHITE = (255, 255, 255)


def box(label: str | None, x1: float, y1: float, x2: float, y2: float) -> GroundingMark:
    return GroundingMark(label=label, box=(x1, y1, x2, y2))


# --- parsing ----------------------------------------------------------------------------------------------


def test_fenced_json_list() -> None:
    text = (
        "Here are the animals:\n```json\n"
        '[\n  {"bbox_2d": [10, 20, 300, 400], "label": "cat"},\n'
        '  {"bbox_2d": [500, 520, 900, 990], "label": "dog"}\n]\n```\nAnything else?'
    )
    assert parse_grounding(text) == [box("cat", 10, 20, 300, 400), box("dog", 500, 520, 900, 990)]


def test_bare_list() -> None:
    assert parse_grounding('[{"bbox_2d": [1, 2, 3, 4], "label": "a"}]') == [box("a", 1, 2, 3, 4)]


def test_single_object() -> None:
    assert parse_grounding('{"bbox_2d": [100.5, 200, 300, 400.25], "label": "cup"}') == [
        box("cup", 100.5, 200, 300, 400.25)
    ]


def test_points() -> None:
    text = '```json\n[{"point_2d": [250, 750], "label": "eye"}, {"point_2d": [10, 20]}]\n```'
    assert parse_grounding(text) == [
        GroundingMark(label="eye", point=(250, 750)),
        GroundingMark(label=None, point=(10, 20)),
    ]


def test_box_and_point_in_one_object() -> None:
    [mark] = parse_grounding('{"bbox_2d": [0, 0, 10, 10], "point_2d": [5, 5], "label": "x"}')
    assert mark.box == (0, 0, 10, 10) and mark.point == (5, 5)


def test_json_inside_prose_and_several_fences() -> None:
    text = (
        'The person is at {"bbox_2d": [1, 1, 50, 50], "label": "person"} and, separately,\n'
        '```\n[{"point_2d": [600, 700], "label": "ball"}]\n```\n'
        'also ```json\n{"bbox_2d": [900, 900, 950, 950], "label": "bird"}\n``` [see note 1].'
    )
    assert parse_grounding(text) == [
        box("person", 1, 1, 50, 50),
        GroundingMark(label="ball", point=(600, 700)),
        box("bird", 900, 900, 950, 950),
    ]


def test_nested_under_another_key() -> None:
    text = '{"objects": [{"bbox_2d": [1, 2, 3, 4], "label": "a"}], "count": 1}'
    assert parse_grounding(text) == [box("a", 1, 2, 3, 4)]


def test_answer_cut_short_keeps_the_complete_objects() -> None:
    text = '```json\n[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [5, 6, 7, 8], "label": "b"}, {"bbox_2d": [9, 1'
    assert parse_grounding(text) == [box("a", 1, 2, 3, 4), box("b", 5, 6, 7, 8)]


def test_trailing_comma_keeps_the_objects() -> None:
    text = '[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [5, 6, 7, 8], "label": "b"},]'
    assert parse_grounding(text) == [box("a", 1, 2, 3, 4), box("b", 5, 6, 7, 8)]


def test_malformed_json_falls_back_to_the_coordinate_lists() -> None:
    text = (
        "[{'bbox_2d': [10, 20, 30, 40], 'label': 'it's a cat'}, {bbox_2d: [50, 60, 70, 80], label: \"dog\"}]"
    )
    marks = parse_grounding(text)
    assert [mark.box for mark in marks] == [(10, 20, 30, 40), (50, 60, 70, 80)]
    assert marks[1].label == "dog"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "There is no cat in this image.",
        "[1, 2, 3, 4]",
        '{"bbox_2d": oops}',
        '{"bbox_2d": [1, 2, 3]}',
        '[{"bbox_2d": "1, 2, 3, 4"}]',
        '[{"label": "cat"}]',
        '{"bbox_2d": [1, 2, 3, 4',
        "```json\n[{]\n```",
        '{"bbox_2d": [NaN, 2, 3, 4]}',
        '{"bbox_2d": [true, false, true, false]}',
    ],
)
def test_nothing_usable_gives_empty_list(text: str) -> None:
    assert parse_grounding(text) == []


def test_items_without_valid_coordinates_are_skipped() -> None:
    text = (
        '[{"bbox_2d": [1, 2, 3], "label": "short"}, {"bbox_2d": ["a", 2, 3, 4], "label": "word"},'
        ' {"point_2d": [1], "label": "half"}, {"bbox_2d": [1, 2, 3, 4], "label": "good"},'
        ' {"bbox_2d": [1, 2, Infinity, 4], "label": "infinite"}, {"bbox_2d": null}]'
    )
    assert parse_grounding(text) == [box("good", 1, 2, 3, 4)]


def test_one_bad_item_does_not_lose_the_others() -> None:
    huge = "9" * 400  # a JSON integer too big for a float
    text = f'[{{"bbox_2d": [{huge}, 2, 3, 4], "label": "huge"}}, {{"bbox_2d": [1, 2, 3, 4], "label": "ok"}}]'
    assert parse_grounding(text) == [box("ok", 1, 2, 3, 4)]


def test_numeric_strings_and_numeric_labels_are_accepted() -> None:
    assert parse_grounding('{"bbox_2d": ["1", "2", "3", "4"], "label": 7}') == [box("7", 1, 2, 3, 4)]


def test_out_of_range_is_clamped() -> None:
    [mark] = parse_grounding('{"bbox_2d": [-10, 20, 1200, 990.5], "label": "x"}')
    assert mark.box == (0, 20, 1000, 990.5)
    [point] = parse_grounding('{"point_2d": [1001, -3]}')
    assert point.point == (1000, 0)


def test_swapped_corners_are_normalised() -> None:
    [mark] = parse_grounding('{"bbox_2d": [700, 800, 100, 200]}')
    assert mark.box == (100, 200, 700, 800)


def test_text_content_counts_as_label() -> None:
    """Qwen3-VL's text-spotting answers name the text with text_content."""
    [mark] = parse_grounding('[{"bbox_2d": [1, 2, 3, 4], "text_content": "EXIT"}]')
    assert mark.label == "EXIT"


def test_blank_label_is_none() -> None:
    [mark] = parse_grounding('{"bbox_2d": [1, 2, 3, 4], "label": "  "}')
    assert mark.label is None


def test_mark_needs_coordinates_and_finite_numbers() -> None:
    with pytest.raises(ValidationError, match="box or a point"):
        GroundingMark(label="nothing")
    with pytest.raises(ValidationError, match="finite"):
        GroundingMark(box=(0, 0, float("nan"), 1))


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + " bbox_2d",
        "{" * 50_000 + '"bbox_2d"',
        '[{"a": ' * 20_000 + "point_2d",
        "bbox_2d" * 1000,
    ],
)
def test_pathological_text_is_handled(text: str) -> None:
    assert parse_grounding(text) == []


def test_marks_before_deeply_nested_junk_are_kept() -> None:
    text = '{"bbox_2d": [1, 2, 3, 4], "label": "a"} then ' + "[" * 5000 + "]" * 4000
    assert parse_grounding(text) == [box("a", 1, 2, 3, 4)]


def test_work_on_unparsable_text_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each failed start can scan the rest of the text; their number is capped, so junk cannot hang the page."""
    attempts = 0
    decoder = grounding._JSON

    class CountingDecoder:
        def raw_decode(self, text: str, index: int) -> tuple[object, int]:
            nonlocal attempts
            attempts += 1
            return decoder.raw_decode(text, index)

    monkeypatch.setattr(grounding, "_JSON", CountingDecoder())
    assert parse_grounding("[" * 100_000 + " bbox_2d") == []
    assert attempts <= grounding.MAX_FAILED_STARTS


def test_random_text_never_raises() -> None:
    generator = random.Random("grounding")
    alphabet = '[]{}",:0123456789.-eE bbox_2dpoint_labelNaInfity\n`json'
    for _ in range(500):
        text = "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 200)))
        marks = parse_grounding(text)
        assert all(isinstance(mark, GroundingMark) for mark in marks)


# --- drawing ----------------------------------------------------------------------------------------------


def white(width: int, height: int) -> Image.Image:
    return Image.new("RGB", (width, height), WHITE)


def test_box_edges_land_on_the_scaled_coordinates() -> None:
    canvas = draw_grounding(white(400, 200), [box(None, 250, 250, 750, 750)])
    # 250/1000 of 400 = 100, 750/1000 of 400 = 300; 250/1000 of 200 = 50, 750/1000 of 200 = 150
    for y in (50, 75, 100, 125, 150):
        assert canvas.getpixel((100, y)) != WHITE, y
        assert canvas.getpixel((300, y)) != WHITE, y
    for x in (100, 200, 300):
        assert canvas.getpixel((x, 50)) != WHITE and canvas.getpixel((x, 150)) != WHITE
    for far in ((5, 5), (395, 195), (200, 100), (90, 100), (310, 100), (200, 40), (200, 160)):
        assert canvas.getpixel(far) == WHITE, far


def test_result_is_a_new_rgb_image_and_the_input_is_untouched() -> None:
    source = white(400, 200).convert("L")
    canvas = draw_grounding(source, [box("cat", 0, 0, 500, 500)])
    assert canvas.mode == "RGB" and canvas is not source
    assert source.getextrema() == (255, 255)


def test_accepts_encoded_bytes() -> None:
    buffer = io.BytesIO()
    white(400, 200).save(buffer, "PNG")
    canvas = draw_grounding(buffer.getvalue(), [box(None, 250, 250, 750, 750)])
    assert canvas.size == (400, 200)
    assert canvas.getpixel((100, 100)) != WHITE


def test_bytes_that_are_not_an_image_raise_value_error() -> None:
    with pytest.raises(ValueError, match="could not be decoded"):
        draw_grounding(b"not an image", [])


def test_transparent_image_is_drawn_on_white() -> None:
    canvas = draw_grounding(Image.new("RGBA", (100, 100), (0, 0, 0, 0)), [])
    assert canvas.mode == "RGB" and canvas.getpixel((50, 50)) == WHITE


def test_each_label_gets_its_own_colour_and_repeats_share_it() -> None:
    marks = [box("cat", 100, 100, 200, 900), box("dog", 400, 100, 500, 900), box("cat", 700, 100, 800, 900)]
    canvas = draw_grounding(white(1000, 500), marks)
    cat, dog, cat_again = (canvas.getpixel((x, 250)) for x in (100, 400, 700))
    assert WHITE not in (cat, dog, cat_again)
    assert cat != dog
    assert cat == cat_again


def test_labels_sit_on_a_filled_tag_in_the_mark_colour() -> None:
    canvas = draw_grounding(white(800, 400), [box("cat", 250, 500, 750, 900)])
    edge_colour = canvas.getpixel((200, 300))  # left edge: x = 200, y from 200 to 360
    tag = canvas.crop((200, 150, 260, 199))  # above the box's top-left corner
    colours = {colour for _, colour in tag.getcolors(maxcolors=100_000)}
    assert edge_colour in colours  # filled background in the mark's colour
    assert len(colours) > 2  # plus the text drawn on it


def test_point_is_drawn_at_its_position() -> None:
    canvas = draw_grounding(white(400, 200), [GroundingMark(label="here", point=(500, 500))])
    assert canvas.getpixel((200, 100)) != WHITE
    assert canvas.getpixel((20, 180)) == WHITE


def test_line_width_grows_with_the_image() -> None:
    small = draw_grounding(white(400, 200), [box(None, 250, 250, 750, 750)])
    large = draw_grounding(white(4000, 2000), [box(None, 250, 250, 750, 750)])
    small_width = sum(small.getpixel((x, 100)) != WHITE for x in range(95, 110))
    large_width = sum(large.getpixel((x, 1000)) != WHITE for x in range(990, 1030))
    assert small_width >= 2
    assert large_width >= 4 * small_width


def test_box_at_the_far_edge_stays_inside_the_image() -> None:
    canvas = draw_grounding(white(400, 200), [box("edge", 0, 0, 1000, 1000)])
    assert canvas.getpixel((399, 100)) != WHITE and canvas.getpixel((200, 199)) != WHITE
