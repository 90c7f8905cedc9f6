def merged(base: dict, override: dict) -> dict:
    """`override` on top of `base`; nested dictionaries are merged too."""
    result = dict(base)
    for key, value in override.items():
        result[key] = value
    return result
