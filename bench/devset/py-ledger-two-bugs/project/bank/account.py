class Account:
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.entries: list[tuple[str, int]] = []

    def deposit(self, cents: int) -> None:
        self.entries.append(("deposit", cents))

    def withdraw(self, cents: int) -> None:
        if cents <= 0:
            raise ValueError("a withdrawal must be positive")
        self.entries.append(("withdraw", cents))
