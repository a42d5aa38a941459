"""Synthetic code-mixed text from English (lexical substitution and alignment)."""
