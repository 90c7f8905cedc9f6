"""The agent: edits code in a scratch copy of a workspace until the project's tests pass."""
