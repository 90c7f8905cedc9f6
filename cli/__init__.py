"""The `smallcoder` command line: one module per sub-command over the same functions the
language server calls. Lines and columns are 1-based here, as editors show them."""
