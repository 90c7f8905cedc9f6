class Queue:
    """First in, first out."""

    def __init__(self) -> None:
        self._items: list = []

    def put(self, item) -> None:
        self._items.append(item)

    def take(self):
        if not self._items:
            raise IndexError("take from an empty queue")
        return self._items.pop()

    def __len__(self) -> int:
        return len(self._items)
