from settings.merge import merged

DEFAULTS = {"editor": {"tab": 4, "wrap": False}, "theme": "light"}


def effective(user: dict) -> dict:
    return merged(DEFAULTS, user)
