"""The CCKS stage's typed config: split, selection and device settings, and its members."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import DataError
from ..registry import check_named_kind, name_problems
from ._registry import MEMBERS

TINY_MODEL = "tiny-random"  # a member's `model`: build the tiny random test BERT into the run (backbones/)

RESERVED = ("split", "src_item_id", "tgt_item_id", "cate_a", "cate_b", "item_label", "unseen", "chosen", "cv_fold")

@dataclass(frozen=True)
class MemberConfig:
    """One member: `name` (score column, members/<name>/), a registered `kind`, kind `options`
    (PairModelConfig fields for trainable kinds) and a PairTrainConfig section `train`."""

    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_named_kind("member", self.name, self.kind, MEMBERS, RESERVED)

@dataclass(frozen=True)
class CcksRunConfig:
    """The CCKS stage (`prodmatch.ccks.run`). `select_folds` (>= 2) is the number of CV folds
    of the held-out pairs that choose the submission entry. `threads` > 0 sets torch's CPU threads
    for the run; `device` trains the pair models on ``cuda`` when it is available (``auto``) or as named.
    `image_policy` (checked when a member reads images): ``error`` stops on an image an item names
    that is missing or unreadable, ``placeholder`` warns and uses a grey image; items that name no
    image always get the grey image."""

    name: str = "ccks"
    seed: int = 0
    holdout_items: float = 0.3
    train_pairs: int = 0
    holdout_pairs: int = 0
    unseen_share: float = 0.25
    select_folds: int = 5
    threads: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    image_policy: Literal["error", "placeholder"] = "error"  # an image an item names but the folder lacks
    summarize_words: int = 0  # > 0: attribute values longer than this keep their highest-idf words (Ditto)
    stacker: bool = False  # a LightGBM entry over member scores + `comparisons`, fitted on the held-out pairs
    comparisons: tuple[str, ...] = ()  # named pair comparisons (stack.comparisons) the stacker reads; () = all
    prune: bool = False  # ensemble entries also with weak members dropped (greedy, refitted in every CV fold)
    members: tuple[MemberConfig, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 < self.holdout_items < 1.0:
            problems.append(f"holdout_items={self.holdout_items} not in (0, 1)")
        if min(self.train_pairs, self.holdout_pairs, self.threads) < 0:
            problems.append("train_pairs, holdout_pairs and threads must be >= 0")
        if not 0.0 <= self.unseen_share < 1.0:
            problems.append(f"unseen_share={self.unseen_share} not in [0, 1)")
        if self.summarize_words < 0:
            problems.append(f"summarize_words={self.summarize_words} must be >= 0 (0: off)")
        if self.select_folds < 2:
            problems.append(f"select_folds={self.select_folds}: cross-validated selection needs at least 2 folds")
        problems += name_problems("member", [m.name for m in self.members])
        if self.comparisons:
            from ..stack.comparisons import comparison_names

            comparison_names(self.comparisons)
        if problems:
            raise DataError("CcksRunConfig: " + "; ".join(problems))
        for spec in self.members:  # every member's options checked when the config is loaded
            MEMBERS[spec.kind](spec, self)
