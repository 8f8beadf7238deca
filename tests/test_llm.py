"""The OpenAI-compatible client against a real loopback server: replies, streams, retries, failures."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from llm_server import ChatServer, Reply
from pydantic import SecretStr

from bot.answer.llm import LLMError, LLMTimeout, OpenAICompatible, complete, make_llm
from bot.settings import Settings


@pytest.fixture
def server() -> Iterator[ChatServer]:
    s = ChatServer()
    yield s
    s.close()


def client(server: ChatServer, **kw) -> OpenAICompatible:
    kw.setdefault("timeout", 2.0)
    kw.setdefault("budget", 5.0)
    return OpenAICompatible(server.url, "test-model", **kw)


def test_plain_reply_and_request_shape(server: ChatServer) -> None:
    server.script("Halo [1].")
    llm = client(server, api_key="sk-secret", temperature=0.3, max_tokens=99)
    assert complete(llm, "Apa kabar?", system="Sistem") == "Halo [1]."
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["model"] == "test-model" and req["stream"] is False
    assert req["temperature"] == 0.3 and req["max_tokens"] == 99
    assert req["messages"] == [
        {"role": "system", "content": "Sistem"},
        {"role": "user", "content": "Apa kabar?"},
    ]
    assert req["headers"]["Authorization"] == "Bearer sk-secret"
    assert "sk-secret" not in llm.name


def test_stream_delivers_pieces_in_order(server: ChatServer) -> None:
    server.script(Reply(pieces=["Kim ", "Jong Un ", "[", "1", "]."]))
    pieces: list[str] = []
    text = client(server).chat([{"role": "user", "content": "q"}], on_token=pieces.append)
    assert pieces == ["Kim ", "Jong Un ", "[", "1", "]."]
    assert text == "Kim Jong Un [1]."
    assert server.requests[0]["stream"] is True


@pytest.mark.parametrize(
    "failure",
    [
        Reply(status=500),
        Reply(status=503),
        Reply(status=429),
        Reply(raw=b"{not json"),
        Reply(raw=b'{"choices": []}'),
        Reply(""),  # empty content
    ],
    ids=["500", "503", "429", "malformed-json", "no-choices", "empty"],
)
def test_transient_failures_are_retried(server: ChatServer, failure: Reply) -> None:
    server.script(failure, "pulih")
    assert complete(client(server, retries=2), "q") == "pulih"
    assert len(server.requests) == 2


def test_retries_stop_at_the_limit(server: ChatServer) -> None:
    server.script(Reply(status=500), Reply(status=500), Reply(status=500), "too late")
    with pytest.raises(LLMError, match="HTTP 500"):
        complete(client(server, retries=2), "q")
    assert len(server.requests) == 3


def test_client_errors_are_not_retried(server: ChatServer) -> None:
    server.script(Reply(status=404), "unused")
    with pytest.raises(LLMError, match="HTTP 404"):
        complete(client(server), "q")
    assert len(server.requests) == 1


def test_slow_server_times_out_within_the_budget(server: ChatServer) -> None:
    server.script(*[Reply("slow", delay=1.0)] * 4)
    llm = client(server, timeout=0.3, budget=1.0, retries=5)
    t0 = time.monotonic()
    with pytest.raises(LLMTimeout):
        complete(llm, "q")
    assert time.monotonic() - t0 < 3.0  # the 1 s budget, with slack for a busy machine


def test_stalling_stream_is_cut_at_the_budget(server: ChatServer) -> None:
    server.script(Reply(pieces=["a "] * 50, stall=0.1))
    llm = client(server, timeout=2.0, budget=0.5)
    got: list[str] = []
    t0 = time.monotonic()
    with pytest.raises(LLMTimeout):
        llm.chat([{"role": "user", "content": "q"}], on_token=got.append)
    assert time.monotonic() - t0 < 3.0
    assert 0 < len(got) < 50
    assert len(server.requests) == 1  # tokens were out: no retry


def test_unreachable_server() -> None:
    llm = OpenAICompatible("http://127.0.0.1:9/v1", timeout=0.5, budget=1.0)
    with pytest.raises(LLMError, match="failed"):
        complete(llm, "q")


def test_make_llm_from_settings() -> None:
    assert make_llm(Settings.load(None, llm="none").llm) is None
    settings = Settings.load(None, llm="openai", llm_url="http://127.0.0.1:1/v1", llm_api_key=SecretStr("k"))
    llm = make_llm(settings.llm)
    assert isinstance(llm, OpenAICompatible) and llm.model == "default"
    with pytest.raises(LLMError, match="KABAR_LLM_GGUF"):
        make_llm(Settings.load(None, llm="llamacpp").llm)


def test_llamacpp_without_the_extra_says_how_to_install(tmp_path) -> None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        gguf = tmp_path / "m.gguf"
        gguf.write_bytes(b"GGUF")
        with pytest.raises(LLMError, match=r"kabar\[llamacpp\]"):
            make_llm(Settings.load(None, llm="llamacpp", llm_gguf=gguf).llm)
    else:
        pytest.skip("llama-cpp-python is installed")


def test_api_key_is_never_shown() -> None:
    s = Settings.load(None, llm_api_key=SecretStr("sk-very-secret"))
    assert "sk-very-secret" not in repr(s) and "sk-very-secret" not in str(s.model_dump())
