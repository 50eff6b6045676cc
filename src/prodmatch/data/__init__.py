"""Data layer: competition loaders with validation, group-disjoint folds, whole-group subsamples,
synthetic generators."""
from .folds import ccks_folds, read_folds, shopee_folds, write_folds
from .shopee import read_shopee_csv
from .subsample import subsample_shopee, take_groups
from .text import decode_title, decode_titles

__all__ = [
    "ccks_folds",
    "decode_title",
    "decode_titles",
    "read_folds",
    "read_shopee_csv",
    "shopee_folds",
    "subsample_shopee",
    "take_groups",
    "write_folds",
]
