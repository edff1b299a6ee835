"""``python -m pipeline`` is the ``trus`` command."""

from pipeline.cli import main

main()
