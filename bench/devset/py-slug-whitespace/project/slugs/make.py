from slugs.normalize import words


def slug(title: str) -> str:
    return "-".join(words(title))
