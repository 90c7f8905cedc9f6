from memo.service import Lookup


def test_repeated_lookups_hit_the_cache():
    lookup = Lookup({"a": 1, "b": 2, "c": 3})
    for key in "aab":
        lookup.find(key)
    assert lookup.misses == 2


def test_the_least_recently_used_goes_first():
    lookup = Lookup({"a": 1, "b": 2, "c": 3})
    for key in "abac":  # c pushes b out: a was used after b
        lookup.find(key)
    misses = lookup.misses
    lookup.find("c")
    lookup.find("a")
    assert lookup.misses == misses
