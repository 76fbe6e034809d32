"""The harness's registries (models, augmentations, datasets, methods, strategies) use the one
registry mechanism, :class:`dcregistry.registry.Registry`; re-exported here for harness modules."""

from __future__ import annotations

from dcregistry.registry import Factory, Registry

__all__ = ["Registry", "Factory"]
