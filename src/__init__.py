"""MindSpore BERT / NEZHA model zoo.

Importing this package has no side effects: configuration is built by the entry
points (`run_*.py`, `tools/*.py`) and passed down explicitly.
"""
