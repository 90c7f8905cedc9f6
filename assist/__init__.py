"""What the editor features do, free of LSP types: inline completion, explain and refactor,
and the workspace context they pack."""
