"""The `kabar` command line: `bot.cli.main` holds the group; each module adds its commands."""
