"""The package version, in one place: read by pyproject.toml (statically, at build time) and
re-exported as ``sinabs_fast.__version__``."""

__version__ = "0.2.0"
