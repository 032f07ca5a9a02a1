"""`python -m bptrain` and the `bptrain` console script: signal handlers first, then the command line."""

from __future__ import annotations

import signal
import sys

from bptrain.interrupts import Signalled, install, raise_pending


def main() -> None:
    try:
        install()  # before typer and numpy import: a signal during imports must not print a traceback
        from bptrain.cli import main as cli_main

        raise_pending()  # a signal whose exception Python dropped during the imports
        cli_main()
    except (Signalled, KeyboardInterrupt) as e:  # before a command took over
        stop = e if isinstance(e, Signalled) else Signalled(signal.SIGINT)
        sys.stderr.write(f"error: {stop} before the command started; nothing was done\n")
        sys.exit(stop.exit_code)


if __name__ == "__main__":
    main()
