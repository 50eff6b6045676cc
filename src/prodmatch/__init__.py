"""prodmatch: find the offers that sell the same product (Shopee, CCKS 2022 task 9.2 and the entity-matching
benchmarks, KDD Cup 2020 Multimodalities Recall)."""
import os as _os

# OpenMP threads that spin while waiting make torch on CPU up to ~17x slower when another process
# shares the cores (measured: test_nfnet forward 0.63 s vs 0.037 s per batch on 2 busy cores).
# PASSIVE must be set before torch loads its OpenMP runtime; an explicit user setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
