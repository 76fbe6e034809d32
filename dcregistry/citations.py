"""What the registry knows about the methods an artifact can come from (rendered into its card):
title, BibTeX, and the protocol their sets are usually evaluated under. Harness methods and
imported ones (``datm``, ``kip``) alike: the registry never imports the harness.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodInfo:
    """Facts about one method name."""

    title: str
    bibtex: str = ""
    protocol: str = "dsa"  # the protocol the card suggests for `harness eval`


DC_BIBTEX = (
    "@inproceedings{zhao2021dc,\n  title={Dataset Condensation with Gradient Matching},\n"
    "  author={Zhao, Bo and Mopuri, Konda Reddy and Bilen, Hakan},\n"
    "  booktitle={International Conference on Learning Representations (ICLR)},\n"
    "  year={2021}\n}"
)

METHODS: dict[str, MethodInfo] = {
    "dc": MethodInfo("Dataset Condensation with Gradient Matching (DC)", DC_BIBTEX, protocol="dc-noaug"),
    "dsa": MethodInfo(
        "Differentiable Siamese Augmentation (DSA)",
        "@inproceedings{zhao2021dsa,\n  title={Dataset Condensation with Differentiable Siamese"
        " Augmentation},\n  author={Zhao, Bo and Bilen, Hakan},\n  booktitle={International "
        "Conference on Machine Learning (ICML)},\n  year={2021}\n}",
    ),
    "dm": MethodInfo(
        "Distribution Matching (DM)",
        "@inproceedings{zhao2023dm,\n  title={Dataset Condensation with Distribution Matching},\n"
        "  author={Zhao, Bo and Bilen, Hakan},\n  booktitle={IEEE/CVF Winter Conference on "
        "Applications of Computer Vision (WACV)},\n  year={2023}\n}",
    ),
    "mtt": MethodInfo(
        "Matching Training Trajectories (MTT)",
        "@inproceedings{cazenavette2022mtt,\n  title={Dataset Distillation by Matching Training"
        " Trajectories},\n  author={Cazenavette, George and Wang, Tongzhou and Torralba, Antonio"
        " and Efros, Alexei A. and Zhu, Jun-Yan},\n  booktitle={IEEE/CVF Conference on Computer"
        " Vision and Pattern Recognition (CVPR)},\n  year={2022}\n}",
        protocol="mtt",
    ),
    "datm": MethodInfo(
        "Difficulty-Aligned Trajectory Matching (DATM)",
        "@inproceedings{guo2024datm,\n  title={Towards Lossless Dataset Distillation via "
        "Difficulty-Aligned Trajectory Matching},\n  author={Guo, Ziyao and Wang, Kai and "
        "Cazenavette, George and Li, Hui and Zhang, Kaipeng and You, Yang},\n  booktitle={"
        "International Conference on Learning Representations (ICLR)},\n  year={2024}\n}",
        protocol="mtt",
    ),
    "kip": MethodInfo(
        "Kernel Inducing Points (KIP)",
        "@inproceedings{nguyen2021kip,\n  title={Dataset Meta-Learning from Kernel Ridge-"
        "Regression},\n  author={Nguyen, Timothy and Chen, Zhourong and Lee, Jaehoon},\n  "
        "booktitle={International Conference on Learning Representations (ICLR)},\n  "
        "year={2021}\n}",
    ),
    "kcenter": MethodInfo(
        "K-Center coreset selection",
        "@inproceedings{sener2018coreset,\n  title={Active Learning for Convolutional "
        "Neural Networks: A Core-Set Approach},\n  author={Sener, Ozan and Savarese, "
        "Silvio},\n  booktitle={International Conference on Learning Representations "
        "(ICLR)},\n  year={2018}\n}",
    ),
    "herding": MethodInfo(
        "Herding selection",
        "@inproceedings{welling2009herding,\n  title={Herding Dynamical Weights to Learn},"
        "\n  author={Welling, Max},\n  booktitle={International Conference on Machine "
        "Learning (ICML)},\n  year={2009}\n}",
    ),
    "forgetting": MethodInfo(
        "Forgetting-score selection",
        "@inproceedings{toneva2019forgetting,\n  title={An Empirical Study of Example "
        "Forgetting during Deep Neural Network Learning},\n  author={Toneva, Mariya and"
        " Sordoni, Alessandro and Combes, Remi Tachet des and Trischler, Adam and "
        "Bengio, Yoshua and Gordon, Geoffrey J.},\n  booktitle={International "
        "Conference on Learning Representations (ICLR)},\n  year={2019}\n}",
    ),
    "random": MethodInfo("Class-balanced random selection of real images", ""),
    # The DC paper's baseline (its Table T12): the best of N random subsets on a validation split.
    "ors": MethodInfo("Optimal random selection (ORS) of real images", DC_BIBTEX, protocol="dc-noaug"),
}

DCBENCH = (
    "@inproceedings{cui2022dcbench,\n  title={{DC-BENCH}: Dataset Condensation Benchmark},"
    "\n  author={Cui, Justin and Wang, Ruochen and Si, Si and Hsieh, Cho-Jui},\n  booktitle="
    "{Advances in Neural Information Processing Systems (NeurIPS) Datasets and Benchmarks},"
    "\n  year={2022}\n}"
)


def method_info(method: str) -> MethodInfo:
    """The facts about ``method`` (an unknown one gets its own name as title, no citation)."""
    return METHODS.get(method) or MethodInfo(method)


def method_title(method: str) -> str:
    """Human title of a method (the method id itself when unknown)."""
    return method_info(method).title


def method_citation(method: str, override: str | None = None) -> str:
    """BibTeX for ``method``; ``override`` (the metadata's citation field) wins when given."""
    if override:
        return override
    bib = method_info(method).bibtex
    return bib or "% no publication: cite the dataset and dcregistry\n" + DCBENCH
