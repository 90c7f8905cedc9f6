from memo.lru import LRU


class Lookup:
    def __init__(self, source: dict, size: int = 2) -> None:
        self.source = source
        self.cache = LRU(size)
        self.misses = 0

    def find(self, key):
        found = self.cache.get(key)
        if found is None:
            self.misses += 1
            found = self.source[key]
            self.cache.put(key, found)
        return found
