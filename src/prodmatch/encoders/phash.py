"""Perceptual hash as a model: 64-bit codes, similarity = 1 - Hamming distance / 64."""
from __future__ import annotations

import numpy as np


def phash_codes(hex_hashes) -> np.ndarray:
    """16-hex-digit strings -> uint64 codes."""
    return np.array([int(h, 16) for h in hex_hashes], dtype=np.uint64)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance of uint64 codes (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


def phash_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - Hamming / 64, in [0, 1]; identical hashes give 1."""
    return 1.0 - hamming(a, b) / 64.0
