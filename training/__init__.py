"""The personal-style adapter: mine the user's repositories, train a LoRA on the base GGUF,
export it as a GGUF adapter, and evaluate it against the base."""
