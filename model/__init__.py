"""Model layer: the registry of GGUF files, inference engines, prompt formats and tokenizers.

Nothing here knows about LSP or the editor.
"""
