"""cfrec: VAEs for binary collaborative filtering, reproduced (ICTIR'22) and extended."""

__version__ = "0.1.0"
