"""`kabar discord`: run the bot, or `--check` the settings and the index without connecting."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from bot.cli.common import Context, data_dir_option, err, pass_context, progress_bars
from bot.settings import Settings

log = logging.getLogger(__name__)

TOKEN_HELP = (
    "set KABAR_DISCORD_TOKEN to your bot's token (Discord Developer Portal → your application → Bot → "
    "Reset Token), in the environment or in a .env file; see docs/discord.md"
)


def require_token(settings: Settings) -> str:
    """The bot token, or a ClickException saying what to set (the token itself is never shown)."""
    token = settings.discord.token.get_secret_value().strip() if settings.discord.token else ""
    if not token:
        raise click.ClickException(f"no Discord bot token: {TOKEN_HELP}.")
    if token.count(".") != 2 or any(c.isspace() for c in token):
        raise click.ClickException(
            "KABAR_DISCORD_TOKEN does not look like a bot token (three dot-separated parts); "
            "copy it again from the Developer Portal (Bot → Reset Token)."
        )
    return token


def check_report(kabar, settings: Settings) -> list[str]:
    """What `--check` found: token, index, corpus folders, command sync, intents (no secrets)."""
    from bot.discordbot.client import build_intents, sync_targets

    stats = kabar.store.stats()
    lines = ["Settings: OK; token: set (not shown)."]
    if stats["articles"]:
        lines.append(
            f"Index: {stats['articles']} article(s), {stats['chunks']} chunk(s), "
            f"model {stats['embed_model']}, "
            f"last indexed {stats['last_indexed'] or 'never'} ({stats['data_dir']})."
        )
    else:
        lines.append(
            f"Index: empty ({stats['data_dir']}); every answer will be a refusal until `kabar index`, "
            "/reindex or /add_article adds articles."
        )
    folders = [str(p) for p in settings.index.corpus]
    missing = [str(p) for p in settings.index.corpus if not p.exists()]
    lines.append(
        f"Corpus folders for /reindex and /add_article: {', '.join(folders) or 'none'}"
        + (f" (missing: {', '.join(missing)})." if missing else ".")
    )
    targets = sync_targets(settings)
    lines.append(
        "Slash commands sync globally (may take up to an hour to appear)."
        if targets == [None]
        else f"Slash commands sync to guild(s) {', '.join(str(t.id) for t in targets if t)}."
    )
    intents = build_intents(settings)
    names = [n for n in ("guilds", "guild_messages", "message_content") if getattr(intents, n)]
    lines.append(
        f"Intents: {', '.join(names)}."
        + (
            " Enable “Message Content Intent” under Bot → Privileged Gateway Intents in the Developer Portal."
            if intents.message_content
            else ""
        )
    )
    return lines


@click.command("discord")
@click.option(
    "--check", is_flag=True, help="Validate the settings and open the index, then exit without connecting."
)
@data_dir_option
@pass_context
def discord_cmd(ctx: Context, check: bool, data_dir: Path | None) -> None:
    """Run Kabar as a Discord bot (token from KABAR_DISCORD_TOKEN; see docs/discord.md)."""
    import aiohttp
    import discord

    from bot.app import build
    from bot.discordbot.client import build_bot

    settings = ctx.settings
    token = require_token(settings)
    with progress_bars(err.is_terminal) as progress:  # the first run rebuilds the bundled model
        kabar = build(settings, data_dir, progress=progress)
    try:
        for line in check_report(kabar, settings):
            click.echo(line, err=True)
        if check:
            return
        bot = build_bot(kabar, settings)
        try:
            bot.run(token, log_handler=None)  # logging is configured by the `kabar` group (-v)
        except discord.LoginFailure:
            raise click.ClickException(
                "Discord rejected the token in KABAR_DISCORD_TOKEN; reset it in the Developer Portal "
                "(Bot → Reset Token) and set it again."
            ) from None
        except (OSError, aiohttp.ClientError) as e:  # no network, DNS, TLS: one line, no traceback
            raise click.ClickException(
                f"Could not reach Discord: {e}. Check the network and try again."
            ) from None
        except discord.PrivilegedIntentsRequired:
            raise click.ClickException(
                "Discord refused the Message Content intent: enable it under Bot → Privileged Gateway "
                "Intents "
                "in the Developer Portal, or set KABAR_DISCORD_FOLLOW_UPS=false (no follow-ups then)."
            ) from None
    finally:
        kabar.close()
