"""The LLM interface and its backends: any OpenAI-compatible server (httpx), or a local GGUF (llama.cpp)."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable

import httpx

from bot.answer.types import Failure
from index.errors import KabarError

if TYPE_CHECKING:
    from bot.settings import LLMSettings

log = logging.getLogger(__name__)

OnToken = Callable[[str], None]


class Message(TypedDict):
    """One chat message: role is 'system', 'user' or 'assistant'."""

    role: str
    content: str


class LLMError(KabarError):
    """The LLM could not give a usable reply (unreachable, too slow, an error status, malformed output)."""

    def __init__(self, message: str, failure: Failure = Failure.UNREACHABLE, status: int | None = None):
        super().__init__(message)
        self.failure = failure
        self.status = status  # the HTTP status of an HTTP_ERROR
        self.checked = 0  # sentences of the reply that verification checked (and removed, all of them)

    @property
    def reason(self) -> str:
        """What a notice shows: 'timeout', 'HTTP 503', 'no citations', ..."""
        if self.failure is Failure.HTTP_ERROR and self.status is not None:
            return f"HTTP {self.status}"
        return self.failure.value


class LLMTimeout(LLMError):
    """The LLM did not finish within its time budget."""

    def __init__(self, message: str):
        super().__init__(message, Failure.TIMEOUT)


@runtime_checkable
class LLM(Protocol):
    """A chat model: the whole reply, optionally streamed token by token to `on_token`.

    With `schema` (a JSON schema) a backend that can constrain its output replies with JSON matching it;
    one that cannot replies in free text, so callers accept both.
    """

    name: str

    def chat(
        self,
        messages: list[Message],
        *,
        on_token: OnToken | None = None,
        schema: dict[str, Any] | None = None,
    ) -> str:
        """The assistant's reply to `messages`; raises LLMError when there is none."""
        ...

    def close(self) -> None:
        """Release connections or the loaded model."""
        ...


def complete(llm: LLM, prompt: str, system: str | None = None) -> str:
    """A one-shot reply to `prompt` (with an optional system message)."""
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return llm.chat(messages)


class OpenAICompatible:
    """Chat completions over HTTP: Ollama, vLLM, llama.cpp's server, LM Studio, OpenAI.

    Every call finishes within `budget` seconds: connection errors, timeouts, 429 and 5xx replies and
    malformed JSON are retried with backoff while the budget lasts, then raise LLMError. A stream that has
    already produced tokens is not retried (the tokens are out).
    """

    def __init__(
        self,
        base_url: str,
        model: str = "",
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        budget: float = 60.0,
        retries: int = 2,
        temperature: float = 0.1,
        max_tokens: int = 512,
        transport: httpx.BaseTransport | None = None,
    ):
        self.name = f"openai:{model or 'default'}@{base_url}"
        # Whether the server honours response_format json_schema: None until the first request tells.
        self.structured: bool | None = None
        self.model = model or "default"  # llama.cpp's server ignores the name; Ollama and vLLM need one
        self.timeout = timeout
        self.budget = budget
        self.retries = retries
        self.temperature = temperature
        self.max_tokens = max_tokens
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/", headers=headers, transport=transport, trust_env=False
        )

    def chat(
        self,
        messages: list[Message],
        *,
        on_token: OnToken | None = None,
        schema: dict[str, Any] | None = None,
    ) -> str:
        """The reply, streamed to `on_token` when given; JSON matching `schema` if the server can."""
        deadline = time.monotonic() + self.budget
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stream": on_token is not None,
        }
        if schema is None or self.structured is False:
            return self._post(body, deadline, on_token)
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "kabar_answer", "schema": schema, "strict": True},
        }
        try:
            reply = self._post(body, deadline, on_token)
        except LLMError as e:
            if e.status not in (400, 404, 415, 422, 501):
                raise
            # The server does not know response_format (or this schema): free text from now on.
            self._learn(False, f"it answered HTTP {e.status}")
            del body["response_format"]
            return self._post(body, deadline, on_token)
        if self.structured is None:
            ok = _is_json_object(reply)
            self._learn(ok, "it replied with JSON" if ok else "it ignored the schema")
        return reply

    def _learn(self, structured: bool, why: str) -> None:
        self.structured = structured
        how = "structured output (response_format json_schema)" if structured else "free text with markers"
        log.info("LLM at %s: using %s, as %s", self._client.base_url, how, why)

    def _post(self, body: dict[str, Any], deadline: float, on_token: OnToken | None) -> str:
        attempt = 0
        while True:
            streamed = [False]
            try:
                return self._once(body, deadline, on_token, streamed)
            except _Retryable as e:
                attempt += 1
                remaining = deadline - time.monotonic()
                wait = min(0.25 * 2**attempt, 2.0) * (0.5 + random.random() / 2)
                if streamed[0] or attempt > self.retries or remaining <= wait + 0.05:
                    message = f"LLM at {self._client.base_url} failed: {e}"
                    if isinstance(e.cause, httpx.TimeoutException):
                        raise LLMTimeout(message) from e.cause
                    raise LLMError(message, e.failure, e.status) from e.cause
                log.info("LLM call failed (%s); retry %d in %.2f s", e, attempt, wait)
                time.sleep(wait)

    def _once(
        self, body: dict[str, Any], deadline: float, on_token: OnToken | None, streamed: list[bool]
    ) -> str:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LLMTimeout(f"LLM at {self._client.base_url} took longer than {self.budget:.0f} s")
        per_call = min(self.timeout, remaining)
        timeout = httpx.Timeout(per_call, connect=min(5.0, per_call))
        try:
            if on_token is None:
                response = self._client.post("chat/completions", json=body, timeout=timeout)
                _check_status(response)
                return _message_content(response)
            with self._client.stream("POST", "chat/completions", json=body, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                _check_status(response)
                parts: list[str] = []
                for piece in _sse_deltas(response.iter_lines()):
                    if time.monotonic() > deadline:
                        raise LLMTimeout(f"LLM stream took longer than {self.budget:.0f} s")
                    if piece:
                        streamed[0] = True
                        parts.append(piece)
                        on_token(piece)
                text = "".join(parts)
                if not text.strip():
                    raise _Retryable("empty reply", Failure.EMPTY)
                return text
        except (httpx.TimeoutException, httpx.TransportError) as e:
            raise _Retryable(f"{type(e).__name__}: {e}", Failure.UNREACHABLE, cause=e) from e

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _is_json_object(text: str) -> bool:
    text = text.strip()
    if not text.startswith("{"):
        return False
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


class _Retryable(Exception):
    def __init__(
        self, message: str, failure: Failure, status: int | None = None, cause: BaseException | None = None
    ):
        super().__init__(message)
        self.failure = failure
        self.status = status
        self.cause = cause


def _check_status(response: httpx.Response) -> None:
    code = response.status_code
    if code == 429 or code >= 500:
        raise _Retryable(f"HTTP {code}", Failure.HTTP_ERROR, code)
    if code >= 400:
        detail = response.text
        key = response.request.headers.get("authorization", "").removeprefix("Bearer ")
        if key:  # a server that echoes the key back ("invalid key sk-...") must not put it in our messages
            detail = detail.replace(key, "***")
        detail = detail[:200].replace("\n", " ")
        raise LLMError(f"LLM server answered HTTP {code}: {detail}", Failure.HTTP_ERROR, code)


def _message_content(response: httpx.Response) -> str:
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise _Retryable(f"malformed reply ({type(e).__name__})", Failure.MALFORMED) from e
    if not isinstance(content, str) or not content.strip():
        raise _Retryable("empty reply", Failure.EMPTY)
    return content


def _sse_deltas(lines: Iterator[str]) -> Iterator[str]:
    """The content pieces of a chat-completions event stream (`data: {...}` lines, `data: [DONE]`)."""
    for line in lines:
        line = line.strip()
        if not line.startswith("data:"):
            continue  # blank separators, comments (": keep-alive"), event names
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
            choices = event.get("choices") or []
            delta = choices[0].get("delta", {}) if choices else {}
            piece = delta.get("content") or ""
        except (ValueError, AttributeError, IndexError, TypeError) as e:
            raise _Retryable(f"malformed stream event ({type(e).__name__})", Failure.MALFORMED) from e
        if not isinstance(piece, str):
            raise _Retryable("malformed stream event (content is not text)", Failure.MALFORMED)
        yield piece


class LlamaCpp:
    """A local GGUF model through llama-cpp-python (`pip install 'kabar[llamacpp]'`)."""

    def __init__(
        self,
        gguf: Path,
        *,
        temperature: float = 0.1,
        max_tokens: int = 512,
        context: int = 4096,
        threads: int | None = None,
        seed: int = 0,
        budget: float = 60.0,
        repeat_penalty: float = 1.1,
    ):
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise LLMError(
                "KABAR_LLM=llamacpp needs llama-cpp-python: pip install 'kabar[llamacpp]' "
                "(it compiles llama.cpp from source; a C compiler and CMake are required)"
            ) from e
        if not gguf.is_file():
            raise LLMError(f"KABAR_LLM_GGUF: no such model file {gguf}")
        self.name = f"llamacpp:{gguf.name}"
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.budget = budget
        self.repeat_penalty = repeat_penalty  # small models loop ("korea selatan, korea selatan, ...")
        self.structured = True  # llama-cpp-python turns a JSON schema into a grammar
        log.info("llama.cpp %s: structured output through a JSON-schema grammar", gguf.name)
        self._llama = Llama(model_path=str(gguf), n_ctx=context, n_threads=threads, seed=seed, verbose=False)

    def chat(
        self,
        messages: list[Message],
        *,
        on_token: OnToken | None = None,
        schema: dict[str, Any] | None = None,
    ) -> str:
        """The reply, streamed to `on_token` when given; JSON matching `schema` when given (a grammar).

        Always generated as a stream, so the budget holds: past it the reply is abandoned (LLMTimeout).
        """
        deadline = time.monotonic() + self.budget
        extra: dict[str, Any] = {}
        if schema is not None:
            extra["response_format"] = {"type": "json_object", "schema": schema}
        try:
            result: Any = self._llama.create_chat_completion(
                messages=list(messages),  # type: ignore[arg-type]
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                repeat_penalty=self.repeat_penalty,
                stream=True,
                **extra,
            )
            parts = []
            for event in result:
                if time.monotonic() > deadline:
                    raise LLMTimeout(f"llama.cpp took longer than {self.budget:.0f} s")
                piece = event["choices"][0].get("delta", {}).get("content") or ""
                if piece:
                    parts.append(piece)
                    if on_token is not None:
                        on_token(piece)
            text = "".join(parts)
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
            raise LLMError(f"llama.cpp failed: {type(e).__name__}: {e}") from e
        if not text.strip():
            raise LLMError("llama.cpp returned an empty reply", Failure.EMPTY)
        return text

    def close(self) -> None:
        """Free the model."""
        close = getattr(self._llama, "close", None)
        if close is not None:
            close()


def make_llm(settings: LLMSettings) -> LLM | None:
    """The LLM the settings select (`KABAR_LLM`), or None for the extractive mode."""
    mode = settings.backend
    if mode == "none":
        return None
    if mode == "openai":
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return OpenAICompatible(
            settings.url,
            settings.model,
            api_key=key,
            timeout=settings.timeout,
            budget=settings.budget,
            retries=settings.retries,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
        )
    if mode == "llamacpp":
        if settings.gguf is None:
            raise LLMError("KABAR_LLM=llamacpp needs KABAR_LLM_GGUF=/path/to/model.gguf")
        return LlamaCpp(
            Path(settings.gguf).expanduser(),
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            context=settings.context,
            budget=settings.budget,
        )
    raise LLMError(f"KABAR_LLM={mode!r}: use none, openai or llamacpp")
