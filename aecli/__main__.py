"""``python -m aecli``."""

from .cli import main

main()
