"""The core's own exceptions: plain ValueErrors that the code above nn translates for the user."""


class OptionError(ValueError):
    """A component was given an option, or a mix of options, that it cannot take."""


class UnknownName(OptionError):
    """A name that no registry holds (an activation, a loss, a layer type, ...)."""
