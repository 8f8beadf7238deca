"""`kabar`: the command group and the console entry point (domain errors become clean messages)."""

from __future__ import annotations

import logging
import sqlite3
import sys

import click

from bot.cli import ask, discord_cmd, eval_cmd, index_cmds
from bot.cli.common import err
from index.errors import KabarError, is_corruption

# Third-party chatter capped at WARNING even with -vv.
_NOISY_LOGGERS = (
    "chromadb",
    "httpx",
    "sentence_transformers",
    "discord.http",
    "transformers",
    "urllib3",
)


@click.group()
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Kabar: ask questions over news articles; every answer cites its passages."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in _NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


for command in (
    index_cmds.index_cmd,
    ask.ask,
    ask.chat,
    index_cmds.stats,
    index_cmds.remove_cmd,
    index_cmds.watch_cmd,
    eval_cmd.eval_cmd,
    discord_cmd.discord_cmd,
):
    cli.add_command(command)


def main() -> None:
    """Console entry point: domain errors become a clean message and exit code 1."""
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        err.print("Aborted.")
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KabarError as e:
        err.print(f"[red]error:[/red] {e}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(1)
    except sqlite3.DatabaseError as e:  # damage found past the checks at open (they catch most)
        if not is_corruption(e):
            raise
        err.print(
            f"[red]error:[/red] the index registry is damaged ({e}); repair it with `kabar index --rebuild`.",
            soft_wrap=True,
        )
        sys.exit(1)
