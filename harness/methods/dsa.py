"""DSA: DC with differentiable Siamese augmentation (Zhao & Bilen, ICML 2021).

DC's algorithm and defaults (:mod:`harness.methods.dc`); per class and outer step one DSA draw
(mode "S": one op family, one parameter set shared by the whole batch, from the dataset's strategy
string) is applied to both the real batch and the synthetic images of the class, and the
inner-loop network training augments every synthetic batch with independent DSA draws, as the
official code does. Draws come from the step's generator (:mod:`harness.augment.dsa`).
"""

from __future__ import annotations

from harness.methods.dc import DC
from harness.methods.registry import METHODS


@METHODS.register("dsa")
class DSA(DC):
    description = "gradient matching with differentiable Siamese augmentation (Zhao & Bilen, ICML 2021)"
    siamese_dsa = True
