"""Card templates and the metadata JSON schema (package data)."""
