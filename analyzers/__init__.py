"""Code analysis behind the prompts: parsing, symbols and context packing; never runs the model."""
