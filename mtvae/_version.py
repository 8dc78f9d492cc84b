"""The package version, in a module that imports nothing: run files record it
(mtvae/checkpoint.py) without importing the whole package, and pyproject.toml reads it from
here (``[tool.setuptools.dynamic]``), so there is one place to change it."""

__version__ = "0.1.0"
