"""The one result type of every detector: :class:`Partition`, and :class:`Hierarchy` when nested.

Labels are *canonical*: contiguous from 0 and ordered by the first unit that carries them;
units a method removed (dead units, isolated units) carry −1 and are listed in ``removed``.

Examples
--------
>>> canonical_labels([5, 5, -1, 2, 7, 2]).tolist()
[0, 0, -1, 1, 2, 1]
>>> p = Partition(labels=[3, 3, 1, -1], method="example")
>>> p.labels.tolist(), p.n_modules, p.removed.tolist()
([0, 0, 1, -1], 2, [3])
>>> [m.tolist() for m in p.modules()]
[[0, 1], [2]]
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Partition", "Hierarchy", "canonical_labels"]


def canonical_labels(labels) -> np.ndarray:
    """Relabel to 0, 1, 2, ... in order of first appearance; negative labels become −1."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full(labels.shape, -1, dtype=np.int64)
    alive = labels >= 0
    if alive.any():
        uniq, first, inverse = np.unique(labels[alive], return_index=True, return_inverse=True)
        rank = np.empty(uniq.size, dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(uniq.size)
        out[alive] = rank[inverse]
    return out


@dataclass(frozen=True, eq=False)
class Partition:
    """A module label per unit of the graph a detector was given.

    Attributes
    ----------
    labels : int array (n_units,)
        Canonical module labels; −1 for units the method removed.
    method : str
        The detector's registry name.
    seed : int or None
        The seed it ran with.
    stats : dict
        Method-specific numbers (description length, modularity, n-cut, k, ...), JSON-ready.
    """

    labels: np.ndarray
    method: str = ""
    seed: int | None = None
    stats: dict = field(default_factory=dict)

    def __post_init__(self):
        labels = canonical_labels(self.labels)
        labels.flags.writeable = False
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "stats", dict(self.stats))

    @property
    def n_modules(self) -> int:
        return int(self.labels.max()) + 1 if (self.labels >= 0).any() else 0

    @property
    def removed(self) -> np.ndarray:
        """Units labelled −1."""
        return np.flatnonzero(self.labels < 0)

    def modules(self) -> list[np.ndarray]:
        """Unit numbers of each module, in label order."""
        order = np.argsort(self.labels, kind="stable")
        bounds = np.searchsorted(self.labels[order], np.arange(self.n_modules + 1))
        return [order[bounds[m]:bounds[m + 1]] for m in range(self.n_modules)]

    def to_dict(self) -> dict:
        return {"method": self.method, "seed": self.seed, "n_modules": self.n_modules,
                "labels": self.labels.tolist(), "removed": self.removed.tolist(), "stats": self.stats}


@dataclass(frozen=True, eq=False)
class Hierarchy(Partition):
    """A nested partition, shaped like graph-tool's ``NestedBlockState.get_bs()``.

    ``levels[0]`` labels units (−1 = removed); ``levels[l]`` labels the blocks of level
    ``l - 1``. ``labels`` (the modules reported) is the projection of ``module_level``.

    Examples
    --------
    >>> h = Hierarchy.from_levels([[0, 0, 1, 2, -1], [0, 0, 1], [0, 0]], module_level=1, method="x")
    >>> h.labels.tolist(), h.project(2).tolist()
    ([0, 0, 0, 1, -1], [0, 0, 0, 0, -1])
    """

    levels: tuple = ()
    module_level: int = 0

    @classmethod
    def from_levels(cls, levels, *, module_level: int = 0, **kwargs) -> "Hierarchy":
        levels = tuple(np.asarray(l, dtype=np.int64) for l in levels)
        for l in range(1, len(levels)):
            n_blocks = int(levels[l - 1].max()) + 1 if (levels[l - 1] >= 0).any() else 0
            if levels[l].shape != (n_blocks,):
                raise ValueError(f"level {l} must label the {n_blocks} blocks of level {l - 1}, "
                                 f"has {levels[l].size} labels")
        proj = _project(levels, module_level)
        return cls(labels=proj, levels=levels, module_level=module_level, **kwargs)

    def project(self, level: int) -> np.ndarray:
        """Canonical per-unit labels at ``level`` (0 = the finest)."""
        return canonical_labels(_project(self.levels, level))

    def to_dict(self) -> dict:
        d = super().to_dict()
        d.update(module_level=self.module_level, levels=[l.tolist() for l in self.levels])
        return d


def _project(levels, level: int) -> np.ndarray:
    if not 0 <= level < len(levels):
        raise ValueError(f"level {level} out of range: the hierarchy has {len(levels)} levels")
    lab = np.array(levels[0], dtype=np.int64)
    for l in range(1, level + 1):
        alive = lab >= 0
        lab[alive] = levels[l][lab[alive]]
    return lab
