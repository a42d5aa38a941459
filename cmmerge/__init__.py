"""cmmerge: adapt multilingual language models to code-mixed text by model merging."""

__version__ = "0.1.0"
