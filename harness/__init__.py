"""harness: evaluate condensed datasets under fixed, named, hashed protocols, and make them."""

__version__ = "0.1.0"
