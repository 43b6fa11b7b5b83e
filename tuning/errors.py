"""The one exception type that means "the user's input is wrong", shown without a traceback."""


class SweepError(Exception):
    """Bad input: a sweep file, a command-line flag or an experiment directory.

    The message names the field and the fix; the CLI prints it and exits with code 2.
    """
