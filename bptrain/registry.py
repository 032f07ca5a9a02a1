"""did_you_mean: the closest known name for a misspelt one (the registries are in bptrain.nn.names)."""

from __future__ import annotations

import difflib


def did_you_mean(name: str, choices) -> str:
    """' Did you mean 'x'?' for the closest choice, or '' when none is close; letter case aside (`Relu` is relu, not elu)."""
    folded = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(str(name).lower(), folded, n=1)
    return f" Did you mean {folded[close[0]]!r}?" if close else ""
