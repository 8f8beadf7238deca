"""Kabar's settings in sections (index, answer, LLM, Discord), read from KABAR_* variables and `.env`.

Each section is its own pydantic-settings class with the variable names users already have
(`KABAR_CHUNK_TOKENS`, `KABAR_LLM_URL`, `KABAR_DISCORD_TOKEN`, ...). `Settings.load()` builds them once,
in the entry point, and the result is passed down; nothing reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from platformdirs import user_cache_dir, user_data_dir
from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.embed import DEFAULT_EMBED_MODEL
from index.errors import KabarError


def default_home() -> Path:
    """XDG data dir for the index (e.g. ~/.local/share/kabar)."""
    return Path(user_data_dir("kabar", appauthor=False))


def default_cache() -> Path:
    """XDG cache dir for the rebuilt embedding model (e.g. ~/.cache/kabar)."""
    return Path(user_cache_dir("kabar", appauthor=False))


class SettingsError(KabarError):
    """A KABAR_* variable has a value that cannot be used (the message names it; the value is not echoed)."""


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, env_file=".env", extra="ignore", populate_by_name=True)


class IndexSettings(BaseSettings):
    """Where the index lives and what shapes it: model, corpus, chunking."""

    model_config = _config("KABAR_")

    home: Path = Field(
        default_factory=default_home, description="Data directory: index, vectors, keyword index."
    )
    cache_dir: Path = Field(
        default_factory=default_cache, description="Cache for the rebuilt embedding model."
    )
    embed_model: str = Field(
        DEFAULT_EMBED_MODEL,
        description="Embedding model: the bundled default, or a sentence-transformers model name or path.",
    )
    query_prefix: str | None = Field(
        None, description="Prefix for queries (default: 'query: ' for e5 models)."
    )
    passage_prefix: str | None = Field(None, description="Prefix for passages (default: 'passage: ' for e5).")
    corpus: list[Path] = Field(
        default_factory=lambda: [Path("seeds")], description="Corpus folders to index."
    )
    chunk_tokens: int = Field(
        160, description="Target chunk size in model tokens (hard limit: the model's 512)."
    )
    chunk_overlap: int = Field(1, description="Sentences shared between neighbouring chunks.")
    index_batch: int = Field(
        256, ge=1, description="Chunks embedded and committed per step of `kabar index` (a kill loses one)."
    )
    embed_batch: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="Texts per forward pass of bulk indexing (default: 32 on a CPU, 128 on a GPU).",
    )
    embed_engine: Literal["auto", "onnx", "onnx-int8", "torch"] = Field(
        "auto",
        description="What runs the bundled model for bulk indexing: auto (onnx-int8 on a CPU, torch on a "
        "GPU), onnx (ONNX Runtime, float32), onnx-int8 (ONNX Runtime with integer matmuls: 1.32x faster, "
        "vectors within cosine ~0.9996 of float32) or torch. Other models always run on torch.",
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto",
        description="Where bulk indexing runs the model: auto (a GPU when torch sees one, else the CPU), "
        "cpu, cuda or mps.",
    )

    def data_dir(self, override: Path | None = None) -> Path:
        """The data directory in force (`--data-dir` wins over KABAR_HOME)."""
        return (override or self.home).expanduser()


class ChromaSettings(BaseSettings):
    """Server mode (docs/deploy.md): the vectors in a collection on a Chroma server, not the data dir."""

    model_config = _config("KABAR_CHROMA_")

    url: str | None = Field(
        None, description="Chroma server, http(s)://host:port; unset: the embedded store in the data dir."
    )
    token: SecretStr | None = Field(
        None, description="Token sent to a token-checking proxy in front of Chroma (never logged)."
    )
    token_header: str = Field(
        "Authorization",
        description="Header carrying KABAR_CHROMA_TOKEN: 'Authorization' sends 'Bearer <token>', any other "
        "header (e.g. X-Chroma-Token) the bare token.",
    )
    headers: SecretStr | None = Field(
        None, description='More request headers, as JSON ({"X-A": "1"}) or k=v;k=v (never logged).'
    )
    tenant: str = Field("default_tenant", description="Chroma tenant.")
    database: str = Field("default_database", description="Chroma database.")
    collection: str = Field("kabar_chunks", min_length=3, description="Collection holding the chunks.")
    timeout: float = Field(30.0, gt=0, description="Seconds one request to the server may take.")
    sync_seconds: float = Field(
        2.0, ge=0, description="Readers look for a writer's changes at most this often (seconds)."
    )

    @field_validator("url")
    @classmethod
    def _url_shape(cls, value: str | None) -> str | None:
        if value:
            from urllib.parse import urlsplit

            parts = urlsplit(value.strip())
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
                raise ValueError("expected http(s)://host:port (no path)")
            return value.strip()
        return None

    @field_validator("headers")
    @classmethod
    def _headers_parse(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_headers(value.get_secret_value())
        return value

    def header_map(self) -> dict[str, str]:
        """Every header to send: KABAR_CHROMA_HEADERS plus the token."""
        out = parse_headers(self.headers.get_secret_value()) if self.headers else {}
        if self.token is not None:
            token = self.token.get_secret_value()
            is_auth = self.token_header.lower() == "authorization"
            out[self.token_header] = f"Bearer {token}" if is_auth else token
        return out

    def target(self) -> Any:
        """The server collection (an `index.chroma.ChromaTarget`), or None in embedded mode."""
        if not self.url:
            return None
        from index.chroma import ChromaTarget

        try:
            return ChromaTarget(
                self.url, self.header_map(), self.tenant, self.database, self.collection, self.timeout
            )
        except KabarError as e:
            raise SettingsError(str(e)) from None


def parse_headers(text: str) -> dict[str, str]:
    """Headers from JSON (an object of strings) or `k=v;k=v`; a malformed value raises ValueError."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        import json

        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError("not valid JSON (expected an object of header names to values)") from None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ValueError("expected a JSON object of header names to string values")
        return {str(k): v for k, v in value.items()}
    out = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValueError("expected name=value pairs separated by ';'")
        out[name.strip()] = value.strip()
    return out


class AnswerSettings(BaseSettings):
    """How answers are made: passages retrieved, refusal threshold, quote length, chat memory."""

    model_config = _config("KABAR_")

    top_k: int = Field(5, description="Passages retrieved per question.")
    scorer: Literal["ranker", "reader", "support"] = Field(
        "ranker",
        description="How extractive answers pick their sentences: ranker (the trained sentence ranker, "
        "bot/answer/ranker.json), reader (Indonesian questions' top 2 passages also read by the span "
        "reader, ranked by bot/answer/ranker_reader.json: more answers quoted on the Wikipedia sets, "
        "~0.8 s more start-up and ~130 MB more memory) or support (the support score the ranker "
        "replaced). All refuse by the support score.",
    )
    min_support: float | None = Field(
        None,
        description="Support score below which the extractive answer refuses (default: calibrated value).",
    )
    min_answerable: float | None = Field(
        None,
        description="KABAR_SCORER=reader: the reader's answerability logit below which the answer refuses "
        "(default: off, unless the adapter records a threshold; the shipped one does not).",
    )
    max_answer_sentences: int = Field(3, description="Most sentences quoted in an extractive answer.")
    rerank_depth: int = Field(
        10, ge=3, description="English questions: fused passages reranked by their best sentence."
    )
    history_turns: int = Field(6, description="Chat turns kept for follow-up questions.")


class LLMSettings(BaseSettings):
    """LLM answers (docs/llm.md): which backend, where, and how long to wait for it."""

    model_config = _config("KABAR_LLM_")

    backend: Literal["none", "openai", "llamacpp"] = Field(
        "none",
        validation_alias=AliasChoices("KABAR_LLM", "backend"),
        description="Answer mode: none (extractive, no LLM), openai (an OpenAI-compatible server at "
        "KABAR_LLM_URL) or llamacpp (the GGUF file KABAR_LLM_GGUF; needs kabar[llamacpp]).",
    )
    url: str = Field(
        "http://localhost:11434/v1",
        description="Base URL of the chat-completions server, as OpenAI clients take it (Ollama: "
        "http://localhost:11434/v1, llama.cpp server: http://localhost:8080/v1).",
    )
    model: str = Field("", description="Model name sent to the server (e.g. qwen2.5:7b-instruct).")
    api_key: SecretStr | None = Field(None, description="API key for the server, if any (never logged).")
    gguf: Path | None = Field(None, description="GGUF model file for KABAR_LLM=llamacpp.")
    timeout: float = Field(30.0, gt=0, description="Seconds one LLM request may take.")
    budget: float = Field(
        60.0, gt=0, description="Seconds per LLM call, retries included; then the extractive answer."
    )
    retries: int = Field(2, ge=0, le=10, description="Retries of a failed LLM request within the budget.")
    temperature: float = Field(0.1, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int = Field(512, ge=16, description="Longest reply, in tokens.")
    context: int = Field(4096, ge=512, description="Context window of the llama.cpp model, in tokens.")


class DiscordSettings(BaseSettings):
    """The Discord front end (`kabar discord`, docs/discord.md). Lists are JSON, e.g. '[1234]'."""

    model_config = _config("KABAR_DISCORD_")

    token: SecretStr | None = Field(None, description="Discord bot token (never logged).")
    guild_ids: list[int] = Field(
        default_factory=list,
        description="Servers (guild ids) where the bot works; empty: every server it is in.",
    )
    channel_ids: list[int] = Field(
        default_factory=list,
        description="Channels where it answers (a thread counts as its parent); empty: every channel.",
    )
    admin_role: str | None = Field(
        None,
        description="Role name or id allowed to run /reindex and /add_article (the Administrator permission "
        "always is).",
    )
    cooldown_seconds: float = Field(10.0, ge=0, description="Seconds a user waits between questions.")
    max_waiting: int = Field(
        20, ge=1, le=10_000, description="Questions waiting for an answer at once; more are told to wait."
    )
    reindex_in_child: bool = Field(
        True,
        description="Run /reindex and the corpus watcher in a niced child process (answers keep their speed; "
        "~330 MB more memory while it runs); false: in a bot thread (less memory, slower answers meanwhile).",
    )
    max_question_chars: int = Field(
        500,
        ge=1,
        le=6000,
        description="Longest question accepted, in characters (Discord's own limit: 6000).",
    )
    answer_mentions: bool = Field(
        True, description="Answer messages that mention the bot outside its own threads."
    )
    open_threads: bool = Field(
        True, description="Answer a mention in a new thread (follow-ups then go in the thread)."
    )
    follow_ups: bool = Field(
        True,
        description="Treat replies to the bot's answers and messages in its threads as follow-up questions "
        "(needs the privileged Message Content intent).",
    )
    sync_guild_ids: list[int] = Field(
        default_factory=list,
        description="Servers to sync slash commands to at start-up (instant); empty: the allowed servers, "
        "or globally (can take up to an hour) when none are set.",
    )
    max_attachment_bytes: int = Field(
        2_000_000, ge=1, le=25_000_000, description="Largest file /add_article accepts, in bytes."
    )
    memory_turns: int = Field(
        6, ge=0, le=50, description="Earlier turns remembered per thread or reply chain for follow-ups."
    )
    shard_count: int | None = Field(
        None, ge=1, description="Shards of the whole bot (Discord requires sharding past 2,500 servers)."
    )
    shard_ids: list[int] = Field(
        default_factory=list,
        description="Shards this process runs (JSON list, e.g. [0, 1]); empty: every shard of the count.",
    )
    watch: bool = Field(
        False,
        description="Run the corpus watcher inside the bot: re-index the corpus folders after changes settle "
        "(deleted files are pruned), as `kabar watch` does.",
    )

    @field_validator("shard_ids")
    @classmethod
    def _shards_in_range(cls, value: list[int], info: ValidationInfo) -> list[int]:
        count = info.data.get("shard_count")
        if value and count is None:
            raise ValueError("needs KABAR_DISCORD_SHARD_COUNT (the shard count of the whole bot)")
        if any(not 0 <= i < (count or 0) for i in value) or len(set(value)) != len(value):
            raise ValueError(f"expected distinct shard ids from 0 to {(count or 1) - 1}")
        return value


_SECTIONS: dict[str, type[BaseSettings]] = {
    "index": IndexSettings,
    "chroma": ChromaSettings,
    "answer": AnswerSettings,
    "llm": LLMSettings,
    "discord": DiscordSettings,
}


class Settings(BaseModel):
    """Every knob of Kabar, by section; `Settings.load()` reads them from the environment and `.env`."""

    index: IndexSettings = Field(default_factory=IndexSettings)
    chroma: ChromaSettings = Field(default_factory=ChromaSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    discord: DiscordSettings = Field(default_factory=DiscordSettings)

    @classmethod
    def load(cls, env_file: str | None = ".env", **overrides: Any) -> Settings:
        """Every section from the environment (and `env_file`); a bad value raises SettingsError.

        `overrides` are named as their variables without `KABAR_` (`chunk_tokens=80`, `llm="openai"`,
        `discord_guild_ids=[1]`) and win over the environment.
        """
        fields = _fields_by_variable()
        given: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
        for key, value in overrides.items():
            variable = f"KABAR_{key.upper()}"
            if variable not in fields:
                raise TypeError(f"no setting {variable}")
            section, field = fields[variable]
            given[section][field] = value
        sections = {}
        problems = []
        for name, section_cls in _SECTIONS.items():
            try:
                sections[name] = section_cls(_env_file=env_file, **given[name])  # type: ignore[call-arg]
            except ValidationError as e:
                problems += [f"{variable_name(section_cls, err['loc'])}: {err['msg']}" for err in e.errors()]
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))
        return cls(**sections)

    def data_dir(self, override: Path | None = None) -> Path:
        """The data directory in force (`--data-dir` wins over KABAR_HOME)."""
        return self.index.data_dir(override)


def variable_name(section: type[BaseSettings], loc: tuple) -> str:
    """The environment variable of a field (the location of a validation error)."""
    field = str(loc[0]) if loc else ""
    if field.upper().startswith("KABAR_"):  # reported under its alias
        return field.upper()
    info = section.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices) and str(alias.choices[0]).startswith("KABAR_"):
        return str(alias.choices[0])
    return f"{section.model_config.get('env_prefix', '')}{field}".upper()


def _fields_by_variable() -> dict[str, tuple[str, str]]:
    """KABAR_* variable -> (section, field), for every setting."""
    out = {}
    for name, section in _SECTIONS.items():
        for field in section.model_fields:
            out[variable_name(section, (field,))] = (name, field)
    return out
