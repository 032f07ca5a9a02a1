"""The seed's streams: the same numbers as the children of SeedSequence(seed), each purpose its own."""

import numpy as np
import pytest

from bptrain import seeds


def draws(rng: np.random.Generator) -> list[int]:
    return rng.integers(0, 2**63, size=8).tolist()


@pytest.mark.parametrize("seed", [0, 1, 42, 2**63 - 1])
def test_the_streams_are_the_spawned_children_of_the_seed(seed):
    """Changing this changes every run's split, weights, batches and dropout masks, and breaks the
    promise that a seed repeats a run."""
    children = np.random.SeedSequence(seed).spawn(4)
    assert [draws(rng) for rng in seeds.streams(seed)] == [draws(np.random.default_rng(c)) for c in children]
    for purpose in (seeds.SPLIT, seeds.INIT, seeds.SHUFFLE, seeds.NOISE):
        assert draws(seeds.stream(seed, purpose)) == draws(np.random.default_rng(children[purpose]))


def test_every_purpose_draws_other_numbers():
    assert len({tuple(draws(rng)) for rng in seeds.streams(3)}) == 4
