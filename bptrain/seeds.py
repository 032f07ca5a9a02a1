"""The one place a run's seed becomes random generators: an independent stream for each purpose."""

from __future__ import annotations

import numpy as np

# Separate streams, so that e.g. a change of architecture (more weights drawn) keeps the data split.
SPLIT, INIT, SHUFFLE, NOISE = range(4)


def stream(seed: int, purpose: int) -> np.random.Generator:
    """The generator for one purpose: child `purpose` of SeedSequence(seed), as spawn() makes it."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(purpose + 1)[purpose])


def streams(seed: int) -> list[np.random.Generator]:
    """One generator per purpose (split, initialization, shuffling, dropout), in that order."""
    return [stream(seed, purpose) for purpose in (SPLIT, INIT, SHUFFLE, NOISE)]
