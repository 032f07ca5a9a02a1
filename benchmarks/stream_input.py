"""Write SIZE bytes (at least) of CSV rows shaped like a CSV file's rows to stdout, fast.

    python benchmarks/stream_input.py datasets/digits.csv 2G | bptrain predict RUN - > /dev/null

The header and rows of the sample file are repeated until SIZE (e.g. 500M, 2G) is reached.
"""

import os
import sys


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def main() -> None:
    sample, size = sys.argv[1], parse_size(sys.argv[2])
    with open(sample, "rb") as f:
        header, *rows = f.read().splitlines(keepends=True)
    block = b"".join(rows)
    while len(block) < (1 << 22):
        block += block
    out = sys.stdout.buffer
    out.write(header)
    written = len(header)
    while written < size:
        out.write(block)
        written += len(block)
    out.flush()


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:  # the reader took what it needed (`| head -c N`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        sys.exit(0)
