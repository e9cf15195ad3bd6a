"""Tokenizers: objects -> discrete codes, and back. `load(path)` opens any tokenizer card."""
