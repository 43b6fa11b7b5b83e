"""``python -m tuning``: the command line (:func:`tuning.cli.main`), as ``run_tune.py`` runs it."""

from tuning.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
