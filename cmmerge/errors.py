"""Errors that describe a problem with the user's input.

Anything raised as a :class:`CmmergeError` is reported by the command line and the stage
scripts as one line (no traceback) with a non-zero exit status; everything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class CmmergeError(Exception):
    """A problem with the user's input: a file, a params key, a model name."""


class ConfigError(CmmergeError):
    """A params/config value is missing, of the wrong type, or out of range."""


class DataError(CmmergeError):
    """A data file is missing, unreadable, or lacks a configured field."""


class ModelError(CmmergeError):
    """A model name or path cannot be resolved or loaded."""


class MergeError(CmmergeError):
    """Checkpoints cannot be merged as configured (shapes, names, values)."""
