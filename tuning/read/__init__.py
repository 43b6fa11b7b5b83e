"""Reading an experiment: the leaderboard, the best trial and its model, the HTML report.

Runs wherever a user reads an experiment, during a sweep or after it; needs no running Ray.
"""
