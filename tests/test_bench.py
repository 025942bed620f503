"""`python -m serve bench`: metrics math, seeded workloads, the chart, and real runs against the tiny vLLM.

The real runs use the session's `tiny_server` (named twice for the multi-endpoint path), a handful of
small images and few output tokens, so they add seconds, not minutes, to the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Protocol

import openai
import pytest
from PIL import Image

from harness.serve_up import REPO_ROOT, free_port
from serve.bench.chart import write_chart
from serve.bench.command import redact, saturation_note
from serve.bench.metrics import (
    BenchResult,
    EndpointMetrics,
    Latency,
    RequestSample,
    Versions,
    compare,
    percentile,
    summarize,
)
from serve.bench.report import render_results
from serve.bench.runner import error_message
from serve.bench.workload import ImageSize, WorkloadSpec, build_workload, poisson_offsets
from serve.cli import main
from serve.cli.arguments import endpoint as _endpoint

OUTPUT_TOKENS = 6
IMAGE_SIZE = "128x96"  # 4 x 3 visual tokens on the tiny checkpoint


class TinyServer(Protocol):
    """What the `tiny_server` fixture (tests/conftest.py) yields."""

    base_url: str
    api_key: str
    served_name: str
    image_limit: int


def spec(**changes: object) -> WorkloadSpec:
    values: dict[str, object] = {
        "requests": 3,
        "warmup": 1,
        "concurrency": 2,
        "images_per_request": 2,
        "image_size": ImageSize(width=64, height=48),
        "prompt_words": 20,
        "output_tokens": 4,
        "seed": 7,
    }
    return WorkloadSpec.model_validate({**values, **changes})


def sample(index: int, ttft: float, e2e: float, itl: list[float], completion: int = 4) -> RequestSample:
    return RequestSample(
        index=index,
        start_s=index * 0.1,
        ttft_ms=ttft,
        e2e_ms=e2e,
        itl_ms=itl,
        prompt_tokens=100 + index,
        completion_tokens=completion,
    )


# --- metrics math on known numbers ---------------------------------------------------------------------


def test_percentile_interpolates_linearly_like_numpy() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 95) == pytest.approx(3.85)
    assert percentile(values, 99) == pytest.approx(3.97)
    assert percentile([42.0], 99) == 42.0
    assert percentile(list(range(101)), 95) == pytest.approx(95.0)
    with pytest.raises(ValueError):
        percentile([], 50)


def test_summarize_pools_gaps_counts_failures_and_divides_by_wall_time() -> None:
    samples = [
        sample(0, ttft=10, e2e=40, itl=[10, 10, 10]),
        sample(1, ttft=20, e2e=80, itl=[20, 20, 20]),
        sample(2, ttft=30, e2e=120, itl=[30, 30, 30]),
        RequestSample(
            index=3, start_s=0.3, error="HTTP 400: At most 2 image(s) may be provided in one prompt."
        ),
        RequestSample(index=4, start_s=0.4, error="HTTP 500: later"),
    ]
    metrics = summarize(name="a", base_url="http://x/v1", model="m", samples=samples, duration_s=2.0)
    assert (metrics.requests, metrics.completed, metrics.failures) == (5, 3, 2)
    assert metrics.first_error == "HTTP 400: At most 2 image(s) may be provided in one prompt."
    assert metrics.ttft_ms == Latency(mean=20, p50=20, p95=29, p99=29.8, count=3)
    assert (
        metrics.itl_ms is not None and metrics.itl_ms.count == 9 and metrics.itl_ms.mean == pytest.approx(20)
    )
    assert metrics.e2e_ms is not None and metrics.e2e_ms.p50 == 80
    assert metrics.output_tokens_per_s == pytest.approx(12 / 2.0)
    assert metrics.requests_per_s == pytest.approx(3 / 2.0)
    assert metrics.prompt_tokens_per_request == pytest.approx(101)
    assert metrics.completion_tokens_per_request == 4


def test_summarize_with_every_request_failed_has_no_latencies() -> None:
    metrics = summarize(
        name="a",
        base_url="http://x/v1",
        model="m",
        samples=[RequestSample(index=0, start_s=0, error="boom")],
        duration_s=1.0,
    )
    assert metrics.ttft_ms is None and metrics.e2e_ms is None and metrics.output_tokens_per_s == 0


def test_comparison_ratios_and_sentence() -> None:
    base = summarize(
        name="8b", base_url="u", model="m", samples=[sample(0, 100, 1000, [10, 10], 100)], duration_s=2.0
    )
    fast = summarize(
        name="4b", base_url="u", model="m", samples=[sample(0, 50, 625, [5, 5], 100)], duration_s=1.25
    )
    comparison = compare(fast, base)
    ratios = {r.metric: r for r in comparison.ratios}
    assert ratios["output tokens/s"].ratio == pytest.approx(1.6)
    assert ratios["TTFT p50"].ratio == pytest.approx(0.5) and ratios["TTFT p50"].speedup == pytest.approx(2)
    assert comparison.summary == "4b is 1.60x faster than 8b (output tokens/s)"
    assert compare(base, fast).summary == "8b is 1.60x slower than 4b (output tokens/s)"


# --- workload --------------------------------------------------------------------------------------------


def test_same_seed_same_workload_and_every_request_has_its_own_images() -> None:
    first, again = build_workload(spec()), build_workload(spec())
    everything = [*first.warmup, *first.measured]
    assert [r.messages() for r in everything] == [r.messages() for r in [*again.warmup, *again.measured]]
    digests = [image.sha256 for r in everything for image in r.images]
    assert len(digests) == 4 * 2 and len(set(digests)) == len(digests)  # warm-up images are new ones too
    assert len({r.prompt for r in everything}) == len(everything)
    other = build_workload(spec(seed=8))
    assert not set(digests) & {image.sha256 for r in other.measured for image in r.images}
    prompt_words = len(first.measured[0].prompt.split())
    assert prompt_words == 20
    with Image.open(_decode(first.measured[0].images[0].data_url)) as image:
        assert (image.format, image.size) == ("JPEG", (64, 48))


def _decode(data_url: str) -> object:
    import base64
    import io

    return io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))


def test_poisson_arrivals_are_seeded_and_have_the_requested_rate() -> None:
    offsets = poisson_offsets(4000, rate=20.0, seed=1)
    assert offsets == poisson_offsets(4000, rate=20.0, seed=1) and offsets[0] == 0
    assert offsets != poisson_offsets(4000, rate=20.0, seed=2)
    assert offsets == sorted(offsets)
    assert offsets[-1] / (len(offsets) - 1) == pytest.approx(1 / 20.0, rel=0.05)
    assert build_workload(spec(concurrency=None, request_rate=5.0)).arrival_offsets()[1] > 0
    assert build_workload(spec()).arrival_offsets() == [0.0] * 3


def test_image_dir_images_are_sent_as_they_are_and_reuse_is_counted(tmp_path: Path) -> None:
    for i, fmt in enumerate(["PNG", "JPEG", "PNG"]):
        Image.new("RGB", (40 + i, 40), (i * 80, 0, 0)).save(tmp_path / f"{i}.{fmt.lower()}", format=fmt)
    (tmp_path / "notes.txt").write_text("not an image")
    workload = build_workload(spec(image_size=None, image_dir=str(tmp_path)))
    images = [image for r in [*workload.warmup, *workload.measured] for image in r.images]
    assert len(images) == 8 and len({i.sha256 for i in images}) == 3
    assert workload.image_reuse == 5
    assert {i.data_url.split(";")[0] for i in images} == {"data:image/png", "data:image/jpeg"}
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images"):
        build_workload(spec(image_size=None, image_dir=str(empty)))
    (empty / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"broken\.jpg: not an image"):
        build_workload(spec(image_size=None, image_dir=str(empty)))


def test_image_size_and_endpoint_arguments() -> None:
    assert str(ImageSize.parse("640x480")) == "640x480"
    for bad in ("640", "640x", "axb", "16x640", "64x20000"):
        with pytest.raises(ValueError):
            ImageSize.parse(bad)
    assert _endpoint("8b=http://127.0.0.1:8000/v1/") == ("8b", "http://127.0.0.1:8000/v1")
    assert _endpoint("http://gpu-box:8001/v1") == ("gpu-box:8001", "http://gpu-box:8001/v1")
    assert _endpoint("https://api.example.com/v1?x=1") == (
        "api.example.com:443",
        "https://api.example.com/v1?x=1",
    )


def test_bad_option_values_are_argparse_errors_that_say_what_is_expected(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cases = {
        ("--endpoint", "localhost:8000"): "is not [NAME=]URL",
        ("--endpoint", "http://user:s3cret@x/v1"): "credentials in the URL would be written to the results",
        ("--endpoint", "http://x/v1", "--image-size", "10x10"): "at least 32 px",
        ("--endpoint", "http://x/v1", "--requests", "0"): "whole number >= 1",
        ("--endpoint", "http://x/v1", "--request-rate", "fast"): "not a positive number",
        ("--endpoint", "http://x/v1", "--concurrency", "2", "--request-rate", "3"): "not allowed with",
        ("--endpoint", "http://x/v1", "--video-seconds", "0"): "not a positive number",
        ("--endpoint", "http://x/v1", "--video-seconds", "7200"): "at most 3600 seconds per clip",
        ("--endpoint", "http://x/v1", "--video-fps", "500"): "at most 120 frames per second",
        ("--endpoint", "http://x/v1", "--video-size", "8x8"): "at least 32 px",
        ("--endpoint", "http://x/v1", "--client", "curl"): "invalid choice: 'curl'",
        (): "required: --endpoint",
    }
    for args, expected in cases.items():
        with pytest.raises(SystemExit) as exit_info:
            main(["bench", *args])
        assert exit_info.value.code == 2
        assert expected in capsys.readouterr().err


def test_api_key_is_redacted_from_the_recorded_command() -> None:
    argv = ["bench", "--api-key", "s3cret", "--endpoint", "http://x/v1", "--api-key=other"]
    assert redact(argv) == ["bench", "--api-key", "***", "--endpoint", "http://x/v1", "--api-key=***"]


def test_video_flags_build_requests_with_a_new_mp4_data_url_each(tmp_path: Path) -> None:
    import cv2

    workload = build_workload(
        spec(videos_per_request=1, video_seconds=1.5, video_size=ImageSize(width=96, height=64), video_fps=8)
    )
    requests = [*workload.warmup, *workload.measured]
    videos = [video for r in requests for video in r.videos]
    assert len(videos) == 4 and len({v.sha256 for v in videos}) == 4  # a new clip for every request
    content = requests[0].messages()[0]["content"]
    assert [part["type"] for part in content] == ["image_url", "image_url", "video_url", "text"]
    url = content[2]["video_url"]["url"]
    assert url.startswith("data:video/mp4;base64,")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(_decode(url).getvalue())  # type: ignore[attr-defined]
    capture = cv2.VideoCapture(str(clip))
    try:
        frames = 0
        while capture.read()[0]:
            frames += 1
        size = (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        assert (frames, size, capture.get(cv2.CAP_PROP_FPS)) == (12, (96, 64), 8)
    finally:
        capture.release()
    again = build_workload(
        spec(videos_per_request=1, video_seconds=1.5, video_size=ImageSize(width=96, height=64), video_fps=8)
    )
    assert [v.sha256 for r in again.measured for v in r.videos] == [v.sha256 for v in videos[1:]]
    assert "1 x 1.5 s 96x64 8 fps video(s)" in workload.spec.describe()


def test_request_body_is_the_streaming_request_serialized_once() -> None:
    request = build_workload(spec()).measured[0]
    body = json.loads(request.body("tiny", 5))
    assert body == {
        "model": "tiny",
        "messages": request.messages(),
        "max_tokens": 5,
        "stream": True,
        "stream_options": {"include_usage": True},
        "min_tokens": 5,
        "ignore_eos": True,
    }


def test_error_messages_of_the_lean_client() -> None:
    vllm_error = b'{"error": {"message": "At most 2 image(s) may be provided in one prompt.", "code": 400}}'
    assert error_message(400, vllm_error) == "HTTP 400: At most 2 image(s) may be provided in one prompt."
    assert error_message(401, b'{"error": "Unauthorized"}') == "HTTP 401: Unauthorized"
    assert error_message(502, b"<html>Bad Gateway</html>") == "HTTP 502: <html>Bad Gateway</html>"
    assert error_message(500, b"") == "HTTP 500: (empty body)"
    assert error_message(None, b'{"error": {"message": "engine died"}}') == "engine died"


def test_saturation_warning_says_what_bounds_the_numbers() -> None:
    def run(client_cpu_s: float) -> EndpointMetrics:
        samples = [sample(0, 10, 40, [1])]
        return summarize(
            name="gpu", base_url="u", model="m", samples=samples, duration_s=2.0, client_cpu_s=client_cpu_s
        )

    busy = run(1.9)
    assert busy.client_cpu_share == pytest.approx(0.95) and busy.client_cpu_ms_per_request == 1900
    note = saturation_note(busy)
    assert note is not None
    assert note.startswith("gpu: the client used 95 % of a core: the numbers are bounded by this machine")
    assert saturation_note(run(0.2)) is None
    assert saturation_note(summarize(name="x", base_url="u", model="m", samples=[], duration_s=1)) is None


# --- chart and table without a server -------------------------------------------------------------------


def test_chart_and_table_from_known_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    base = summarize(
        name="8b",
        base_url="u8",
        model="m8",
        samples=[sample(0, 100, 900, [8, 9])],
        duration_s=1,
        client_cpu_s=0.0123,
    )
    fast = summarize(
        name="4b", base_url="u4", model="m4", samples=[sample(0, 60, 500, [4, 5])], duration_s=0.6
    )
    result = BenchResult(
        timestamp="2026-01-01T00:00:00+00:00",
        command=["python", "-m", "serve", "bench"],
        machine="test",
        versions=Versions(python="3", serve="0", openai="0"),
        workload=spec(),
        endpoints=[base, fast],
        comparisons=[compare(fast, base)],
    )
    chart = write_chart(result, tmp_path / "chart.png")
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.width > 1000
    render_results(Console(width=160), result)
    printed = capsys.readouterr().out
    for label in ("TTFT p99", "ITL p95", "e2e latency p99", "output tokens/s", "4b is 1.67x faster than 8b"):
        assert label in printed
    assert "client CPU / request" in printed and "12.30 ms" in printed and "1%" in printed


# --- against the real tiny vLLM --------------------------------------------------------------------------


@pytest.mark.vllm
def test_cli_benchmarks_two_endpoints_and_writes_json_and_chart(
    tiny_server: TinyServer, tmp_path: Path
) -> None:
    out_json, out_png = tmp_path / "bench.json", tmp_path / "bench.png"
    command = [
        sys.executable,
        "-m",
        "serve",
        "bench",
        "--endpoint",
        f"first={tiny_server.base_url}",
        "--endpoint",
        f"second={tiny_server.base_url}",
        "--api-key",
        tiny_server.api_key,
        "--requests",
        "8",
        "--concurrency",
        "4",
        "--image-size",
        IMAGE_SIZE,
        "--output-tokens",
        str(OUTPUT_TOKENS),
        "--warmup",
        "1",
        "--json",
        str(out_json),
        "--chart",
        str(out_png),
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("VLLM_API_KEY", "OPENAI_API_KEY")}
    run = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert tiny_server.api_key not in run.stdout + run.stderr + out_json.read_text()
    assert "TTFT p95" in run.stdout and "second is" in run.stdout

    result = BenchResult.model_validate_json(out_json.read_text())
    assert "***" in result.command and result.workload.output_tokens == OUTPUT_TOKENS
    assert [e.name for e in result.endpoints] == ["first", "second"]
    assert result.comparisons[0].summary.startswith("second is")
    text_only = _text_only_prompt_tokens(tiny_server, out_json)
    for endpoint in result.endpoints:
        assert (endpoint.requests, endpoint.completed, endpoint.failures) == (8, 8, 0)
        assert endpoint.model == tiny_server.served_name and endpoint.server_version
        for latency in (endpoint.ttft_ms, endpoint.e2e_ms, endpoint.itl_ms):
            assert latency is not None and 0 < latency.p50 <= latency.p95 <= latency.p99
        assert endpoint.ttft_ms is not None and endpoint.e2e_ms is not None
        assert endpoint.ttft_ms.p50 <= endpoint.e2e_ms.p50 < 60_000
        assert endpoint.output_tokens_per_s > 0 and endpoint.requests_per_s > 0
        assert [s.completion_tokens for s in endpoint.samples] == [OUTPUT_TOKENS] * 8
        assert endpoint.prompt_tokens_per_request is not None
        assert endpoint.prompt_tokens_per_request > text_only  # the images were counted
    with Image.open(out_png) as image:
        assert image.format == "PNG" and image.width > 1000


@pytest.mark.vllm
def test_sdk_and_default_client_measure_the_same_requests_and_report_their_cpu(
    tiny_server: TinyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VLLM_API_KEY", tiny_server.api_key)
    # Any client counts as saturated here, so the run shows the warning wired end to end.
    monkeypatch.setattr("serve.bench.command.CLIENT_SATURATED_SHARE", 0.0)
    results = {}
    for client in ("sdk", "http"):
        out = tmp_path / f"{client}.json"
        args = ["--endpoint", f"{client}={tiny_server.base_url}", "--requests", "4", "--concurrency", "2"]
        args += ["--image-size", "64x64", "--output-tokens", "5", "--warmup", "1", "--json", str(out)]
        code = main(["bench", *args] + (["--client", client] if client == "sdk" else []))
        printed = capsys.readouterr().out
        assert code == 0, printed
        assert f"serve bench ({client} client)" in printed and "client CPU / request" in printed
        assert (
            f"{client}: the client used" in printed and "bounded by this machine, not the server" in printed
        )
        results[client] = BenchResult.model_validate_json(out.read_text())
    for client, result in results.items():
        endpoint = result.endpoints[0]
        assert result.client == client and (endpoint.completed, endpoint.failures) == (4, 0)
        assert [s.completion_tokens for s in endpoint.samples] == [5] * 4
        assert endpoint.client_cpu_s is not None and endpoint.client_cpu_s > 0
        assert endpoint.client_cpu_share is not None and endpoint.client_cpu_share > 0
        assert (
            endpoint.ttft_ms is not None
            and endpoint.itl_ms is not None
            and 0 < endpoint.itl_ms.count <= 4 * 4
        )
    # Same seed, same requests: both clients sent identical prompts (the server counts the same tokens).
    assert results["sdk"].endpoints[0].prompt_tokens_per_request == (
        results["http"].endpoints[0].prompt_tokens_per_request
    )
    assert results["http"].versions.orjson and results["http"].versions.httpx


def _text_only_prompt_tokens(tiny_server: TinyServer, out_json: Path) -> int:
    """Prompt tokens of the run's first measured request sent without its image."""
    workload = build_workload(WorkloadSpec.model_validate(json.loads(out_json.read_text())["workload"]))
    client = openai.OpenAI(base_url=tiny_server.base_url, api_key=tiny_server.api_key, max_retries=0)
    reply = client.chat.completions.create(
        model=tiny_server.served_name,
        messages=[{"role": "user", "content": workload.measured[0].prompt}],
        max_tokens=1,
    )
    assert reply.usage is not None
    return reply.usage.prompt_tokens


@pytest.mark.vllm
def test_request_rate_with_the_image_limit_and_failures_over_it(
    tiny_server: TinyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VLLM_API_KEY", tiny_server.api_key)
    common = ["bench", "--endpoint", tiny_server.base_url, "--image-size", "64x64", "--output-tokens", "4"]
    out = tmp_path / "rate.json"
    code = main([*common, "--requests", "4", "--request-rate", "20", "--warmup", "0", "--json", str(out)])
    assert code == 0, capsys.readouterr()
    metrics = BenchResult.model_validate_json(out.read_text()).endpoints[0]
    assert metrics.failures == 0 and [s.completion_tokens for s in metrics.samples] == [4] * 4
    starts = [s.start_s for s in metrics.samples]
    assert starts == sorted(starts) and starts[-1] > 0  # sent at their arrival times, not all at once

    too_many = str(tiny_server.image_limit + 1)
    code = main(
        [*common, "--requests", "2", "--images-per-request", too_many, "--warmup", "0", "--json", str(out)]
    )
    assert code == 1
    metrics = BenchResult.model_validate_json(out.read_text()).endpoints[0]
    assert metrics.failures == 2 and metrics.first_error is not None
    assert metrics.first_error.startswith("HTTP 400") and "At most" in metrics.first_error
    assert "first error: HTTP 400" in capsys.readouterr().out


@pytest.mark.vllm
def test_videos_are_measured_and_cost_their_visual_tokens(
    tiny_server: TinyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The suite's tiny server takes one video per request (its profile's frame budget): every request with a
    generated clip succeeds, and the clip's visual tokens show in the prompt tokens next to a run without."""
    monkeypatch.setenv("VLLM_API_KEY", tiny_server.api_key)
    base = ["bench", "--endpoint", tiny_server.base_url, "--requests", "2", "--warmup", "0"]
    base += ["--image-size", "64x64", "--output-tokens", "4"]
    runs = {}
    for name, extra in {
        "video": ["--videos-per-request", "1", "--video-seconds", "2", "--video-size", "128x128"],
        "plain": [],
    }.items():
        out = tmp_path / f"{name}.json"
        assert main([*base, *extra, "--json", str(out)]) == 0, capsys.readouterr()
        runs[name] = BenchResult.model_validate_json(out.read_text())
    video, plain = runs["video"].endpoints[0], runs["plain"].endpoints[0]
    assert (runs["video"].workload.videos_per_request, runs["video"].workload.video_seconds) == (1, 2.0)
    assert video.failures == 0 and plain.failures == 0
    assert video.prompt_tokens_per_request and plain.prompt_tokens_per_request
    assert video.prompt_tokens_per_request > plain.prompt_tokens_per_request + 16


@pytest.mark.vllm
def test_wrong_key_and_unknown_model_stop_before_starting(
    tiny_server: TinyServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    assert main(["bench", "--endpoint", tiny_server.base_url, "--api-key", "wrong-key"]) == 2
    err = capsys.readouterr().err
    assert "rejected the API key (401)" in err and len(err.strip().splitlines()) == 1
    assert "wrong-key" not in err
    monkeypatch.setenv("VLLM_API_KEY", tiny_server.api_key)
    assert main(["bench", "--endpoint", tiny_server.base_url, "--model", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert f"does not serve model 'no-such-model'; it serves: {tiny_server.served_name}" in err


def test_unreachable_endpoint_exits_2_with_one_line_and_no_traceback() -> None:
    port = free_port()  # nothing listens there
    run = subprocess.run(
        [sys.executable, "-m", "serve", "bench", "--endpoint", f"gpu=http://127.0.0.1:{port}/v1"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert run.stderr.startswith(f"error: cannot reach gpu (http://127.0.0.1:{port}/v1): ")
    assert len(run.stderr.strip().splitlines()) == 1
    assert "Traceback" not in run.stdout + run.stderr
