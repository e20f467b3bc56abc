"""Subcommands of the ``rsfm`` CLI (see :mod:`rsfm.cli`)."""
