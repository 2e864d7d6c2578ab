"""The command line: parse, call the library, render. See :mod:`aecli.cli.app`."""

from .app import app, main

__all__ = ["app", "main"]
