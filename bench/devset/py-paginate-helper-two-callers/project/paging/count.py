def page_count(total: int, per_page: int) -> int:
    """How many pages `total` items fill, `per_page` to a page (the last may be partial)."""
    if per_page <= 0:
        raise ValueError("per_page must be positive")
    return total // per_page
