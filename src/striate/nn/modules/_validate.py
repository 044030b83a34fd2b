"""Constructor-argument checks shared by the layers; errors name the layer, the rule and the value."""


def positive_int(value, name, layer):
    """``value`` if it is a positive int, else a TypeError/ValueError naming ``layer`` and ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{layer}: {name} must be an int. Received: {name}={value!r}")
    if value <= 0:
        raise ValueError(f"{layer}: {name} must be a positive integer. Received: {name}={value}")
    return value


def probability(value, name, layer):
    """``value`` as a float in [0, 1], else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{layer}: {name} must be a probability between 0 and 1. Received: {name}={value!r}")
    return float(value)
