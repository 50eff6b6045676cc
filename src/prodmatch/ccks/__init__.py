"""CCKS 2022 task 9.2: are two items the same product? Pair members, ensembles, result file.

``ccks_run(data_dir, "ccks-test", out)``; the layout and protocol are in ccks/README.md.
"""
from __future__ import annotations

from . import members  # noqa: F401  (registers the built-in member kinds)
from ._registry import MEMBERS, register_member
from .config import CcksRunConfig, MemberConfig
from .members import Member, MemberScores, build_members
from .run import ccks_run

__all__ = ["CcksRunConfig", "MEMBERS", "Member", "MemberConfig", "MemberScores", "build_members", "ccks_run",
           "register_member"]
