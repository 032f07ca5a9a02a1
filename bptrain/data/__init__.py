"""The data: reading files, columns and their preprocessing, splits; nothing here trains."""
