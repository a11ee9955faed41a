"""The verbs of the `objfs` command, one module each (see objfs/cli.py)."""
