"""Errors of the model layer; their messages are shown to users as they are.

Each says what happened and what to do about it.
"""


class ModelError(Exception):
    """A model file is missing, unusable, or could not be fetched."""
