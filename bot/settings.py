"""Kabar's settings: one place, read from KABAR_* environment variables and `.env`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from platformdirs import user_cache_dir, user_data_dir
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.embed import DEFAULT_EMBED_MODEL


def default_home() -> Path:
    """XDG data dir for the index (e.g. ~/.local/share/kabar)."""
    return Path(user_data_dir("kabar", appauthor=False))


def default_cache() -> Path:
    """XDG cache dir for the rebuilt embedding model (e.g. ~/.cache/kabar)."""
    return Path(user_cache_dir("kabar", appauthor=False))


class Settings(BaseSettings):
    """Every knob of Kabar, with its default and what it does."""

    model_config = SettingsConfigDict(env_prefix="KABAR_", env_file=".env", extra="ignore")

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
    top_k: int = Field(5, description="Passages retrieved per question.")
    chunk_tokens: int = Field(
        160, description="Target chunk size in model tokens (hard limit: the model's 512)."
    )
    chunk_overlap: int = Field(1, description="Sentences shared between neighbouring chunks.")
    index_batch: int = Field(
        256, ge=1, description="Chunks embedded and committed per step of `kabar index` (a kill loses one)."
    )
    min_support: float | None = Field(
        None,
        description="Support score below which the extractive answer refuses (default: calibrated value).",
    )
    max_answer_sentences: int = Field(3, description="Most sentences quoted in an extractive answer.")
    history_turns: int = Field(6, description="Chat turns kept for follow-up questions.")
    discord_token: SecretStr | None = Field(None, description="Discord bot token (never logged).")

    # --- Discord front end (`kabar discord`, docs/discord.md) ------------------------------------------
    # Lists are JSON in the environment, e.g. KABAR_DISCORD_GUILD_IDS='[123456789012345678]'.
    discord_guild_ids: list[int] = Field(
        default_factory=list,
        description="Servers (guild ids) where the bot works; empty: every server it is in.",
    )
    discord_channel_ids: list[int] = Field(
        default_factory=list,
        description="Channels where it answers (a thread counts as its parent); empty: every channel.",
    )
    discord_admin_role: str | None = Field(
        None,
        description="Role name or id allowed to run /reindex and /add_article (the Administrator permission "
        "always is).",
    )
    discord_cooldown_seconds: float = Field(10.0, ge=0, description="Seconds a user waits between questions.")
    discord_max_question_chars: int = Field(
        500,
        ge=1,
        le=6000,
        description="Longest question accepted, in characters (Discord's own limit: 6000).",
    )
    discord_answer_mentions: bool = Field(
        True, description="Answer messages that mention the bot outside its own threads."
    )
    discord_open_threads: bool = Field(
        True, description="Answer a mention in a new thread (follow-ups then go in the thread)."
    )
    discord_follow_ups: bool = Field(
        True,
        description="Treat replies to the bot's answers and messages in its threads as follow-up questions "
        "(needs the privileged Message Content intent).",
    )
    discord_sync_guild_ids: list[int] = Field(
        default_factory=list,
        description="Servers to sync slash commands to at start-up (instant); empty: the allowed servers, "
        "or globally (can take up to an hour) when none are set.",
    )
    discord_max_attachment_bytes: int = Field(
        2_000_000, ge=1, le=25_000_000, description="Largest file /add_article accepts, in bytes."
    )
    discord_memory_turns: int = Field(
        6, ge=0, le=50, description="Earlier turns remembered per thread or reply chain for follow-ups."
    )
    discord_watch: bool = Field(
        False,
        description="Run the corpus watcher inside the bot: re-index the corpus folders after changes settle "
        "(deleted files are pruned), as `kabar watch` does.",
    )

    # --- LLM answers (issue 6, docs/llm.md) ----------------------------------------------------------
    llm: Literal["none", "openai", "llamacpp"] = Field(
        "none",
        description="Answer mode: none (extractive, no LLM), openai (an OpenAI-compatible server at "
        "KABAR_LLM_URL) or llamacpp (the GGUF file KABAR_LLM_GGUF; needs kabar[llamacpp]).",
    )
    llm_url: str = Field(
        "http://localhost:11434/v1",
        description="Base URL of the chat-completions server, as OpenAI clients take it (Ollama: "
        "http://localhost:11434/v1, llama.cpp server: http://localhost:8080/v1).",
    )
    llm_model: str = Field("", description="Model name sent to the server (e.g. qwen2.5:7b-instruct).")
    llm_api_key: SecretStr | None = Field(None, description="API key for the server, if any (never logged).")
    llm_gguf: Path | None = Field(None, description="GGUF model file for KABAR_LLM=llamacpp.")
    llm_timeout: float = Field(30.0, gt=0, description="Seconds one LLM request may take.")
    llm_budget: float = Field(
        60.0, gt=0, description="Seconds per LLM call, retries included; then the extractive answer."
    )
    llm_retries: int = Field(2, ge=0, le=10, description="Retries of a failed LLM request within the budget.")
    llm_temperature: float = Field(0.1, ge=0, le=2, description="Sampling temperature.")
    llm_max_tokens: int = Field(512, ge=16, description="Longest reply, in tokens.")
    llm_context: int = Field(4096, ge=512, description="Context window of the llama.cpp model, in tokens.")

    def data_dir(self, override: Path | None = None) -> Path:
        """The data directory in force (`--data-dir` wins over KABAR_HOME)."""
        return (override or self.home).expanduser()
