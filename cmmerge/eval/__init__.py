"""Evaluation: metrics, prediction, the significance tests, the report, the sweep and the learning curve."""
