"""Kabar on Discord: slash commands, mentions and follow-ups over the same engine as `kabar ask`."""
