"""AFI: frame interpolation research for 2D animation."""

__version__ = "0.1.0"
