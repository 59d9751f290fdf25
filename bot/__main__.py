"""``python -m bot`` runs the spendbot command line."""

from bot.cli import app

app()
