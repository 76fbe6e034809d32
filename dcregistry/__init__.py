"""dcregistry: condensed datasets as versioned, verifiable, self-describing artifacts."""

__version__ = "0.1.0"
