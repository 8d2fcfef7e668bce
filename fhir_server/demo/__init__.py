"""The Kazakhstan sample dataset and ``kzfhir load --demo`` (issue 13): data/ is written by build.py,
dataset.py reads it for the current week, steps.py loads it under the secure default, cli.py prints tokens."""
