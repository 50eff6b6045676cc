"""Data layer: competition loaders with validation, group-disjoint folds, synthetic generators."""
from .ccks import check_ccks_images, parse_pvs, read_ccks_items, read_ccks_pairs
from .folds import ccks_folds, read_folds, shopee_folds, write_folds
from .shopee import read_shopee_csv
from .text import decode_title, decode_titles

__all__ = [
    "check_ccks_images",
    "ccks_folds",
    "decode_title",
    "decode_titles",
    "parse_pvs",
    "read_ccks_items",
    "read_ccks_pairs",
    "read_folds",
    "read_shopee_csv",
    "shopee_folds",
    "write_folds",
]
