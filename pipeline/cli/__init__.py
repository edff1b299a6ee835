"""The ``trus`` command line, one module per command; :mod:`pipeline.cli.main` assembles them."""
