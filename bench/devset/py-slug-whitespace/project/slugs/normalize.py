import re


def words(title: str) -> list[str]:
    """The title's words, lower case, punctuation dropped."""
    cleaned = re.sub(r"[^a-z0-9 ]", "", title.lower())
    return cleaned.split(" ")
