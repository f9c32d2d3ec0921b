"""A fitted HistGradientBoostingClassifier's trees as arrays, evaluated with numpy (pure).

scikit-learn predicts one tree at a time, with input validation around it: about 10 µs per tree, 2 ms for
the shipped model's 200 trees on a single window, most of the per-window budget (5 ms). Here all trees
advance one level per step, together, so scoring a window costs a few numpy operations per tree level.
The result is the same number: ``tests/falls`` hold it equal to ``predict_proba`` on real windows.

Only what the fall model uses is supported: binary classification, numerical features (missing values
follow each node's learned direction). Anything else is refused when compiling.

The padded per-tree arrays are what is saved; for prediction they are laid out once more, at load time,
as one flat table of all trees' nodes (:class:`_Walk`), so that a step of the walk is a handful of
gathers on one small array rather than two-dimensional fancy indexing over every field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geosentinel.falls.signals import Floats


@dataclass(frozen=True, slots=True)
class CompiledTrees:
    baseline: float  # the raw score before any tree (log-odds of the training prevalence)
    feature: NDArray[np.intp]  # trees × nodes, padded
    threshold: Floats  # go left when x <= threshold
    missing_left: NDArray[np.bool_]
    left: NDArray[np.intp]
    right: NDArray[np.intp]
    is_leaf: NDArray[np.bool_]
    value: Floats
    depth: int
    _walk: _Walk = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = (self.feature, self.threshold, self.missing_left, self.left, self.right, self.is_leaf)
        if self.feature.ndim != 2 or len({part.shape for part in (*parts, self.value)}) != 1:
            raise ValueError("model file: tree arrays do not fit together")
        object.__setattr__(self, "_walk", _Walk.of(self))

    @staticmethod
    def of(estimator: Any) -> CompiledTrees:
        """The trees of a fitted binary ``HistGradientBoostingClassifier``; ValueError for anything else."""
        predictors = getattr(estimator, "_predictors", None)
        if predictors is None or getattr(estimator, "n_trees_per_iteration_", 0) != 1:
            raise ValueError("not a fitted binary HistGradientBoostingClassifier")
        nodes = [iteration[0].nodes for iteration in predictors]
        if any(n["is_categorical"].any() for n in nodes):
            raise ValueError("categorical splits are not supported")
        width = max(len(n) for n in nodes)

        def padded(name: str, dtype: type) -> NDArray[Any]:
            out: NDArray[Any] = np.zeros((len(nodes), width), dtype=dtype)
            for row, n in enumerate(nodes):
                out[row, : len(n)] = n[name]
            return out

        return CompiledTrees(
            baseline=float(np.ravel(estimator._baseline_prediction)[0]),
            feature=padded("feature_idx", np.intp),
            threshold=padded("num_threshold", np.float64),
            missing_left=padded("missing_go_to_left", np.bool_),
            left=padded("left", np.intp),
            right=padded("right", np.intp),
            is_leaf=padded("is_leaf", np.bool_),  # padding is never reached: a leaf stops every walk
            value=padded("value", np.float64),
            depth=int(max(n["depth"].max() for n in nodes)),
        )

    def arrays(self, prefix: str) -> dict[str, NDArray[Any]]:
        """The trees as named arrays (``prefix`` tells models in one file apart), for ``np.savez``."""
        fields = ("feature", "threshold", "missing_left", "left", "right", "is_leaf", "value")
        out: dict[str, NDArray[Any]] = {f"{prefix}.{name}": getattr(self, name) for name in fields}
        out[f"{prefix}.baseline"] = np.array([self.baseline])
        out[f"{prefix}.depth"] = np.array([self.depth])
        return out

    @staticmethod
    def from_arrays(arrays: Mapping[str, NDArray[Any]], prefix: str) -> CompiledTrees:
        """Trees saved by :meth:`arrays` (from ``np.load(..., allow_pickle=False)``: numbers only, nothing
        that could run code); ValueError when they do not fit together."""
        try:
            trees = CompiledTrees(
                baseline=float(arrays[f"{prefix}.baseline"][0]),
                feature=np.asarray(arrays[f"{prefix}.feature"], dtype=np.intp),
                threshold=np.asarray(arrays[f"{prefix}.threshold"], dtype=np.float64),
                missing_left=np.asarray(arrays[f"{prefix}.missing_left"], dtype=np.bool_),
                left=np.asarray(arrays[f"{prefix}.left"], dtype=np.intp),
                right=np.asarray(arrays[f"{prefix}.right"], dtype=np.intp),
                is_leaf=np.asarray(arrays[f"{prefix}.is_leaf"], dtype=np.bool_),
                value=np.asarray(arrays[f"{prefix}.value"], dtype=np.float64),
                depth=int(arrays[f"{prefix}.depth"][0]),
            )
        except KeyError as exc:
            raise ValueError(f"model file lacks {exc}") from None
        width = trees.feature.shape[1]  # (the shapes agree: checked on construction)
        if not 0 < trees.depth <= width:
            raise ValueError("model file: tree arrays do not fit together")
        for links in (trees.left, trees.right):  # every walk stays inside its tree
            inner = links[~trees.is_leaf]
            if inner.size and (inner.min() < 0 or inner.max() >= width):
                raise ValueError("model file: a tree points outside itself")
        return trees

    def predict_proba(self, x: Floats) -> Floats:
        """Like scikit-learn's: one row per sample, columns P(not fall), P(fall)."""
        rows = np.asarray(x, dtype=np.float64)
        raw = self.baseline + self._walk.leaf_values(rows).sum(axis=1)
        fall = 1.0 / (1.0 + np.exp(-raw))
        return np.column_stack([1.0 - fall, fall])


@dataclass(frozen=True, slots=True)
class _Walk:
    """All trees' nodes in one table, for walking every tree at once.

    A node's place in the table is ``2 × (tree × width + node)``: doubled, so that its right child's
    entry in :attr:`child` sits just after its left child's, and one step is ``child[place + goes_right]``.
    A leaf's children are itself, so walks that have ended stay put without a test for leaves. The
    per-node fields are repeated in both slots of a pair, so that they are read at a place directly.
    """

    start: NDArray[np.intp]  # each tree's root
    feature: NDArray[np.intp]
    threshold: Floats
    missing_right: NDArray[np.bool_]  # a missing value goes right
    child: NDArray[np.intp]
    value: Floats
    depth: int

    @staticmethod
    def of(trees: CompiledTrees) -> _Walk:
        count, width = trees.feature.shape
        node = np.arange(count * width).reshape(count, width)
        base = node[:, :1]
        left = np.where(trees.is_leaf, node, base + trees.left)
        right = np.where(trees.is_leaf, node, base + trees.right)

        def doubled(values: NDArray[Any]) -> NDArray[Any]:
            return np.repeat(values.ravel(), 2)

        child = np.column_stack([left.ravel(), right.ravel()]).ravel() * 2
        return _Walk(
            start=np.ascontiguousarray(base[:, 0] * 2),
            feature=doubled(trees.feature),
            threshold=doubled(trees.threshold),
            missing_right=doubled(~trees.missing_left),
            child=child,
            value=doubled(trees.value),
            depth=trees.depth,
        )

    def leaf_values(self, rows: Floats) -> Floats:
        """samples × trees: the value of the leaf each sample reaches in each tree."""
        features = rows.shape[1]
        offset = (np.arange(len(rows)) * features)[:, None]  # row starts in the flattened samples
        flat = rows.ravel()
        missing = bool(np.isnan(flat).any())
        place = np.repeat(self.start[None, :], len(rows), axis=0)
        for _ in range(self.depth):
            values = flat[self.feature[place] + offset]
            # x <= threshold goes left: NaN compares false both ways, and follows the node's direction.
            right = values > self.threshold[place]
            if missing:
                right |= np.isnan(values) & self.missing_right[place]
            place = self.child[place + right]
        return self.value[place]
