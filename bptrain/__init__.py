"""bptrain: train fully connected networks by backpropagation on tabular data."""

__version__ = "0.1.0"
