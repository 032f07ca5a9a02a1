"""A run on disk: its folder, checkpoints and model file, resume rules and reports."""
