"""The method registry: every condensation method registers its class here, one decorator line each."""

from __future__ import annotations

from harness.registry import Registry

#: canonical name -> method class (``@METHODS.register("name")`` on the class).
METHODS: Registry[type] = Registry("method")
