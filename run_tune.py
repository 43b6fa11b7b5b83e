"""Tune a Lightning model on Ray. With no arguments, runs search_spaces/mnist1d_cnn.yaml.

    python run_tune.py                                   # the default sweep
    python run_tune.py launch search_spaces/smoke.yaml --num-samples 4
    python run_tune.py leaderboard runs/<name>
    python run_tune.py best runs/<name> --json
    python run_tune.py validate search_spaces/mnist1d_cnn.yaml

All logic lives in tuning.cli; ``lightsweep`` is the same command once installed.
"""

from tuning.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
