"""Run the command line as `python -m dns_toy`."""

from .cli import app

app()
