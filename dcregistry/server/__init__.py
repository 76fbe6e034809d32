"""The dcreg HTTP server: the Hub-compatible API (``app``) and the browse pages (``pages``)."""
