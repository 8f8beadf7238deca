"""The OpenAI-compatible client against a real loopback server: replies, streams, retries, failures."""

from __future__ import annotations

import subprocess
import sys
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
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    # A fresh interpreter where llama_cpp cannot be imported (make test installs it for the llm tests).
    code = (
        "import sys; sys.modules['llama_cpp'] = None\n"
        "from bot.answer.llm import LLMError, make_llm\n"
        "from bot.settings import Settings\n"
        f"try:\n    make_llm(Settings.load(None, llm='llamacpp', llm_gguf={str(gguf)!r}).llm)\n"
        "except LLMError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'kabar[llamacpp]'" in out


def test_api_key_is_never_shown() -> None:
    s = Settings.load(None, llm_api_key=SecretStr("sk-very-secret"))
    assert "sk-very-secret" not in repr(s) and "sk-very-secret" not in str(s.model_dump())


# --- structured output: response_format json_schema where the server honours it, free text where not ---

SCHEMA = {"type": "object", "properties": {"sentences": {"type": "array"}}, "required": ["sentences"]}
JSON_REPLY = '{"sentences": [{"sentence": "Kim Jong Un ingin teknologi militer", "passages": [1]}]}'


def test_structured_output_is_asked_for_and_kept_when_honoured(
    server: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(JSON_REPLY, JSON_REPLY)
    llm = client(server)
    with caplog.at_level("INFO", logger="bot.answer.llm"):
        assert llm.chat([{"role": "user", "content": "q"}], schema=SCHEMA) == JSON_REPLY
        assert llm.chat([{"role": "user", "content": "q"}], schema=SCHEMA) == JSON_REPLY
    first, second = server.requests
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["schema"] == SCHEMA
    assert second["response_format"] == first["response_format"] and llm.structured is True
    said = f"LLM at {server.url}/: using structured output (response_format json_schema), as it replied"
    assert [r.message.startswith(said) for r in caplog.records].count(True) == 1  # once, at -v
    server.script("Halo.")
    complete(llm, "x")  # a call without a schema sends none
    assert "response_format" not in server.requests[-1]


def test_a_server_rejecting_response_format_gets_free_text_from_then_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = ChatServer(structured=False)
    server.script("Kim Jong Un ingin teknologi militer [1].", "Lagi [1].")
    llm = client(server)
    with caplog.at_level("INFO", logger="bot.answer.llm"):
        assert (
            llm.chat([{"role": "user", "content": "q"}], schema=SCHEMA)
            == "Kim Jong Un ingin teknologi militer [1]."
        )
        assert llm.chat([{"role": "user", "content": "q"}], schema=SCHEMA) == "Lagi [1]."
    server.close()
    rejected, retried, second = server.requests  # one probe, then never again
    assert "response_format" in rejected and "response_format" not in retried
    assert "response_format" not in second and llm.structured is False
    assert any("free text with markers, as it answered HTTP 400" in r.message for r in caplog.records)


def test_a_server_ignoring_the_schema_is_remembered(server: ChatServer) -> None:
    server.script("Teks bebas [1].", "Lagi [1].")
    llm = client(server)
    assert llm.chat([{"role": "user", "content": "q"}], schema=SCHEMA) == "Teks bebas [1]."
    assert llm.structured is False
    llm.chat([{"role": "user", "content": "q"}], schema=SCHEMA)
    assert "response_format" not in server.requests[-1]
