"""Package discovery (the rest of the configuration is in pyproject.toml).

Every package under ``dcregistry/`` and ``harness/`` is found automatically, so a new module
directory ships without editing a list; ``cards/`` (templates and the metadata schema) is
installed as ``dcregistry.cards``.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["dcregistry", "dcregistry.*", "harness", "harness.*"]),
        "dcregistry.cards",
    ],
    package_dir={"dcregistry.cards": "cards"},
)
