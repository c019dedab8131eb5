"""The bundled study files (data only): found by name with ``importlib.resources``."""
