"""How a benchmark script ends: its figures as a table or JSON, and one line when it cannot."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable


def progress(quiet: bool) -> Callable[[str], None]:
    """Where a benchmark says what it is doing: stderr, unless its output is JSON."""

    def say(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr, flush=True)

    return say


def measured(prog: str, measure: Callable[[], dict], as_json: bool,
             table: Callable[[dict], None]) -> dict:  # fmt: skip
    """Run `measure` and print its results; ^C and failures exit with one line."""
    try:
        results = measure()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        print(f"{prog}: failed: {e}", file=sys.stderr)
        sys.exit(1)
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        table(results)
    return results
