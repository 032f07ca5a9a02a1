"""Looking at trained runs: listing them, comparing them, their figures and feature importance."""
