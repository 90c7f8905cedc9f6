from metrics.stats import mean, median


def summary(values: list[float], target: float) -> dict:
    """Mean, median and the share of values at or above `target`, in percent."""
    reached = sum(1 for value in values if value >= target)
    return {"mean": mean(values), "median": median(values),
            "reached_percent": round(reached / len(values))}
