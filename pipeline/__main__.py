"""``python -m pipeline`` is the ``trus`` command."""

from pipeline.cli.main import main

main()
