"""`python -m bptrain` and the `bptrain` console script: signal handlers first, then the command line."""

from __future__ import annotations

import gc
import os
import signal
import sys

from bptrain.interrupts import SIGNALS, Signalled, install, raise_pending


def main() -> None:
    try:
        install()  # before typer and numpy import: a signal during imports must not print a traceback
        # Before numpy and pyarrow are imported, which read these once. Reading the 431 MB CSV file
        # of benchmarks/big_data.py, each cost 1-3 s of system time on the 2-core test machine:
        # pyarrow's default allocator (mimalloc) handing pages back and taking them again as two
        # threads parse, and numpy asking for huge pages for every large array (the kernel then
        # clears 2 MB at a time). Either can be set otherwise in the environment.
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
        os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
        from bptrain.cli import main as cli_main

        raise_pending()  # a signal whose exception Python dropped during the imports
        cli_main()
    except (Signalled, KeyboardInterrupt) as e:  # before a command took over
        stop = e if isinstance(e, Signalled) else Signalled(signal.SIGINT)
        sys.stderr.write(f"error: {stop} before the command started; nothing was done\n")
        sys.exit(stop.exit_code)
    finally:
        # The exit code is decided. Python's own shutdown puts the default handlers back before it
        # tears the modules down, and a signal then would kill the process instead: held back from
        # here on, it is dropped with the process.
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, set(SIGNALS))
        # Python's shutdown searches every object for reference cycles, more than once: 0.3-0.4 s
        # after a fit, with numpy, pandas and pydantic loaded. Frozen, they are only freed; files,
        # threads and atexit handlers are closed, joined and run as before.
        gc.freeze()


if __name__ == "__main__":
    main()
