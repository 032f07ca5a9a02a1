"""Hyperparameter search over configs with Optuna: the search space (space.py), one trial as an
ordinary run (trial.py), the study driven from one process with trials on local worker processes or
a Dask cluster (study.py), and the tune folder's reports (report.py)."""
