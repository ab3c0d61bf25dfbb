"""Helpers shared by several test files (importable as ``support``: pyproject puts ``tests`` on the path)."""
