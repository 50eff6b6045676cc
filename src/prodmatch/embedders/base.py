"""What an embedding method offers every stage: a frame in, one model's data out.

Stages never branch on the method: `embed` stores ``transform(train)`` / ``transform(test)``,
`baseline` tunes on `grid`, `bundle` writes `bundle_spec()` and `predict` rebuilds the method with
`from_bundle` and calls ``transform(test)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


class Embedder:
    """One embedding method (registered by name); unsupervised unless `trained`."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "dense"  # how a run stores its data: "dense" | "sparse" | "phash" (`store.KINDS`)
    trained: ClassVar[bool] = False  # True: weights come from training folds, not from the frame itself
    needs_images: ClassVar[bool] = False  # reads pixels (not only titles and the phash column)
    grid: ClassVar[np.ndarray] = np.round(np.arange(0.05, 1.0, 0.01), 2)  # baseline threshold grid

    def transform(self, frame: pd.DataFrame) -> Any:
        """The frame's representation: an (n, d) array, an (n, d) CSR matrix or n uint64 codes."""
        raise NotImplementedError

    def settings(self) -> dict:
        """What a run records of this method besides its name (e.g. the TF-IDF config)."""
        return {}

    def bundle_spec(self) -> dict:
        """This method's entry in bundle.json (`from_bundle` reads it back)."""
        return {"kind": self.kind, "source": self.name, "folders": []}

    @classmethod
    def from_bundle(cls, models_dir: Path, spec: dict, **options) -> "Embedder":
        """The method a bundle entry names, ready to transform a test frame."""
        return cls()
