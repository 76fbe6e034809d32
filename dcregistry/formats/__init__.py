"""Import published condensed sets into dcreg/1 artifacts and export artifacts to other formats.

Import formats (``IMPORTERS``): ``dc-pt`` (DC/DSA/DM ``res_*.pt``), ``mtt`` (MTT/DATM
``images_best.pt`` + ``labels_best.pt`` + ``lr_best.pt``), ``kip-npz``, ``npz``.
Export formats (``EXPORTERS``): ``pt``, ``npz``, ``png``, ``hf-datasets``.

Nothing is unpickled beyond ``torch.load(weights_only=True)`` (in :mod:`.safe_torch`, the only
``torch.load`` call site) and ``numpy.load(allow_pickle=False)``. Importing this package does not
import torch, PIL or ``datasets``; each is loaded by the code path that needs it.
"""

from __future__ import annotations

from .exporters import EXPORT_FORMATS, EXPORTERS, ExportResult, export_artifact
from .grid import grid_image, render_grid, save_grid_png, to_unit_images
from .importers import (
    IMPORT_FORMATS,
    IMPORTERS,
    PIXEL_SPACES,
    ImportedSet,
    ImportOptions,
    ImportResult,
    import_file,
    read_sets,
)

__all__ = [
    "EXPORT_FORMATS", "EXPORTERS", "ExportResult", "export_artifact",
    "grid_image", "render_grid", "save_grid_png", "to_unit_images",
    "IMPORT_FORMATS", "IMPORTERS", "PIXEL_SPACES", "ImportedSet", "ImportOptions",
    "ImportResult", "import_file", "read_sets",
]
