"""Implementations measured by eigenbench, importable on their own (CuPy and SciPy load lazily)."""
