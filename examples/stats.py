"""Small statistics helpers for the shop's reports."""


def mean(values: list[float]) -> float:
    """Return the arithmetic mean of `values`; raise ValueError when it is empty."""
    if not values:
        raise ValueError("mean of an empty list")
    return sum(values) / len(values)


def median(values: list[float]) -> float:
    """Return the middle value of `values` once sorted (the mean of the two middle ones
    when there is an even number of values); raise ValueError when it is empty."""

