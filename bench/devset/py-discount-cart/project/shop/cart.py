from shop.pricing import discounted


class Cart:
    def __init__(self) -> None:
        self.lines: list[tuple[str, int, int]] = []

    def add(self, name: str, price_cents: int, quantity: int = 1) -> None:
        self.lines.append((name, price_cents, quantity))

    def total(self, percent_off: int = 0) -> int:
        return sum(discounted(price, percent_off) * quantity
                   for _, price, quantity in self.lines)
