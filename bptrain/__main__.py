"""`python -m bptrain` runs the command-line interface."""

from bptrain.cli import main

main()
