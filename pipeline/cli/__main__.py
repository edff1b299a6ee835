"""``python -m pipeline.cli`` is the ``trus`` command."""

from pipeline.cli.main import main

main()
