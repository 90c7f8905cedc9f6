from geometry.units import to_metres


def rectangle_area(width: float, height: float, unit: str = "m") -> float:
    """The area in square metres."""
    return to_metres(width, unit) * to_metres(height, unit)


def perimeter(width: float, height: float, unit: str = "m") -> float:
    return 2 * (to_metres(width, unit) + to_metres(height, unit))
