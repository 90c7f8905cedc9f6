def restock_amount(on_hand: int, minimum: int, batch: int) -> int:
    """How many to order so that at least `minimum` are on hand, in whole batches."""
    if on_hand >= minimum:
        return 0
    missing = minimum - on_hand
    return (missing // batch) * batch
