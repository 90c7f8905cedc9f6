"""Length units, all converted to metres."""

FACTORS = {"m": 1.0, "km": 1000.0, "mm": 0.001}


def to_metres(value: float, unit: str) -> float:
    if unit == "cm":
        return value / 10
    if unit not in FACTORS:
        raise ValueError(f"unknown unit {unit!r}")
    return value * FACTORS[unit]
