"""The CCKS stage: a CCKS data folder -> trained and unsupervised pair members -> ensembles -> result file.

Protocol (bench/ccks_pairs.py + bench/ccks_ensemble.py made one stage):

1. Items are item_train_info + item_valid_info; pairs are item_train_pair (labelled) and
   item_valid_pair. item_valid_pair_truth.jsonl, when present, labels the valid pairs for scoring
   only: members and ensembles never see those labels.
2. Held-out part: a seeded random share ``holdout_items`` of the train items is held out; held-out
   pairs join two held-out items, training pairs none, pairs across are dropped (item-disjoint,
   like valid, whose items never occur in train); ``train_pairs`` / ``holdout_pairs`` subsample
   (0 = all).
3. Members come from the :data:`MEMBERS` registry: trainable ``cross`` / ``two_tower`` train on the
   training part, with checkpoint and threshold chosen on the held-out part (saved under
   ``members/<name>/``); unsupervised ``tfidf_cosine`` / ``pvs_jaccard``. Each scores the held-out
   and the valid pairs.
4. Entries are decision rules (:class:`Rule`: ``fit(y, scores, unseen) -> Fitted``) fitted on the
   held-out scores only: each member's best threshold, the threshold ensemble and the F1 vote on
   raw and on Platt-calibrated scores, each also with separate thresholds for unseen categories
   (fitted on the held-out pairs touching a seeded pseudo-unseen share ``unseen_share`` of the
   held-out categories; applied to valid pairs with a category absent from item_train_pair).
5. **Submission entry**: the entry with the best cross-validated held-out F1 (``cv_f1``). The
   held-out pairs are split into ``select_folds`` seeded folds (:func:`selection_folds`): grouped
   by connected component of the held-out pair graph (items = nodes, pairs = edges; sklearn
   ``StratifiedGroupKFold``) when at least ``k`` components hold a positive and ``k`` a negative
   pair and every fold's complement holds both labels, else plain ``StratifiedKFold`` by label;
   ``k`` is ``select_folds`` clamped to the smaller label count (fewer than 2 of either label is a
   DataError). Every rule is refitted -- the same ``Rule.fit`` as the final fit -- on k-1 folds
   and predicts the left-out fold; ``cv_f1`` is the pair F1 of the pooled out-of-fold decisions.
   The in-sample held-out F1 (the rule fitted and scored on all held-out pairs) is reported next
   to it but takes no part in the choice, since it favours the rules with the most fitted values.
   Ties go to the earlier entry: members in config order, then the ensembles (threshold, F1 vote;
   each raw, calibrated, raw + unseen, calibrated + unseen), so simpler rules win ties. The chosen
   rule, refitted on all held-out pairs, makes the valid decisions. Valid labels play no part.
   (The CV refits the rules, not the members: a trained member's checkpoint was chosen on all
   held-out pairs, so its held-out scores are slightly optimistic in the CV too.)

Writes ``out/``: run.json (config, data hashes, code version, split sizes, member facts),
scores.parquet (with each held-out pair's ``cv_fold``), ensembles.json (every rule's
parameters, held-out and CV F1, the folds), result.jsonl (competition format, ``write_decision_result``),
members/<name>/, and with the valid truth compare.csv + report.md.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

import numpy as np
import pandas as pd

from ..config import from_dict, load_config, to_dict
from ..errors import DataError, preview
from ..io import atomic_dir, atomic_path, data_hashes, write_csv, write_json, write_text
from ..metrics import pair_scores
from ..registry import registrar

log = logging.getLogger(__name__)

TINY_MODEL = "tiny-random"  # a member's `model`: build the tiny random test BERT into the run (backbones/)
FILES = {"train_info": "item_train_info.jsonl", "valid_info": "item_valid_info.jsonl",
         "train_pairs": "item_train_pair.jsonl", "valid_pairs": "item_valid_pair.jsonl",
         "valid_truth": "item_valid_pair_truth.jsonl"}
RESERVED = ("split", "src_item_id", "tgt_item_id", "cate_a", "cate_b", "item_label", "unseen", "chosen", "cv_fold")
SELECTION = ("best cross-validated held-out F1 (each rule refitted on k-1 folds of the held-out pairs, "
             "F1 of the pooled out-of-fold decisions); ties: the earlier entry")


# ---------------------------------------------------------------- config
@dataclass(frozen=True)
class MemberConfig:
    """One member: `name` (score column, members/<name>/), a registered `kind`, kind `options`
    (PairModelConfig fields for trainable kinds) and a PairTrainConfig section `train`."""

    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or self.name.startswith(".") or "/" in self.name or self.name in RESERVED:
            raise DataError(f"member name {self.name!r}: must be non-empty, without '/', not starting with '.', "
                            f"and none of {', '.join(RESERVED)}")
        if self.kind not in MEMBERS:
            close = difflib.get_close_matches(self.kind, list(MEMBERS), n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise DataError(f"member {self.name!r}: unknown kind {self.kind!r}; {hint}known: {', '.join(sorted(MEMBERS))}")


@dataclass(frozen=True)
class CcksRunConfig:
    """The CCKS stage (see the module docstring). `select_folds` (>= 2) is the number of CV folds
    of the held-out pairs that choose the submission entry. `threads` > 0 sets torch's CPU threads
    for the run; `device` trains the pair models on ``cuda`` when it is available (``auto``) or as named."""

    name: str = "ccks"
    seed: int = 0
    holdout_items: float = 0.3
    train_pairs: int = 0
    holdout_pairs: int = 0
    unseen_share: float = 0.25
    select_folds: int = 5
    threads: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    members: tuple[MemberConfig, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 < self.holdout_items < 1.0:
            problems.append(f"holdout_items={self.holdout_items} not in (0, 1)")
        if min(self.train_pairs, self.holdout_pairs, self.threads) < 0:
            problems.append("train_pairs, holdout_pairs and threads must be >= 0")
        if not 0.0 <= self.unseen_share < 1.0:
            problems.append(f"unseen_share={self.unseen_share} not in [0, 1)")
        if self.select_folds < 2:
            problems.append(f"select_folds={self.select_folds}: cross-validated selection needs at least 2 folds")
        names = [m.name for m in self.members]
        if not names:
            problems.append("no members")
        if len(set(names)) < len(names):
            problems.append(f"repeated member name(s) {preview(sorted({n for n in names if names.count(n) > 1}))}")
        if problems:
            raise DataError("CcksRunConfig: " + "; ".join(problems))
        build_members(self)  # every member's options checked when the config is loaded


# ---------------------------------------------------------------- data
@dataclass
class CcksData:
    """Pair frames (``pair_frame``) of the training, held-out and valid pairs, plus masks.
    `valid` carries no labels; `y_valid` holds the truth's (None without it)."""

    items: pd.DataFrame
    train: pd.DataFrame
    holdout: pd.DataFrame
    valid: pd.DataFrame
    y_valid: np.ndarray | None
    unseen_holdout: np.ndarray
    unseen_valid: np.ndarray
    pseudo_unseen: list[str]
    folder: Path
    seed: int


def read_items(data_dir: Path) -> pd.DataFrame:
    """Train + valid items of a CCKS folder."""
    from ..data.ccks import read_ccks_items

    paths = [data_dir / FILES[k] for k in ("train_info", "valid_info")]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{data_dir}: not a CCKS folder, missing {', '.join(missing)}")
    return pd.concat([read_ccks_items(p) for p in paths], ignore_index=True)


def read_valid(data_dir: Path, items: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray | None]:
    """(valid pairs without labels, their truth labels or None): item_valid_pair.jsonl, else the truth's pairs."""
    from ..data.ccks import read_ccks_pairs

    pairs_path, truth_path = data_dir / FILES["valid_pairs"], data_dir / FILES["valid_truth"]
    if not pairs_path.is_file() and not truth_path.is_file():
        raise DataError(f"{data_dir}: no {pairs_path.name} (nor {truth_path.name}); nothing to predict")
    truth = read_ccks_pairs(truth_path, items) if truth_path.is_file() else None
    valid = read_ccks_pairs(pairs_path, items) if pairs_path.is_file() else truth
    valid = valid[["src_item_id", "tgt_item_id"]].reset_index(drop=True)
    if not len(valid):
        raise DataError(f"{data_dir}: the valid pair set is empty")
    return valid, None if truth is None else truth_labels(valid, truth, truth_path)


def truth_labels(valid: pd.DataFrame, truth: pd.DataFrame, where: Path) -> np.ndarray:
    """The truth's label of each valid pair; the truth must hold exactly the valid pairs."""
    if "item_label" not in truth.columns:
        raise DataError(f"{where}: no item_label; a truth file labels every pair")
    key = ["src_item_id", "tgt_item_id"]
    merged = valid.merge(truth[key + ["item_label"]].drop_duplicates(key), on=key, how="left")
    if merged["item_label"].isna().any() or len(truth) != len(valid):
        raise DataError(f"{where}: holds {len(truth)} pairs, {int(merged['item_label'].notna().sum())} of the "
                        f"{len(valid)} valid pairs; the truth must label exactly the valid pairs")
    return merged["item_label"].to_numpy(np.int64)


def _subsample(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if n and len(frame) > n:
        frame = frame.iloc[np.sort(rng.choice(len(frame), n, replace=False))]
    return frame.reset_index(drop=True)


def item_disjoint_split(pairs: pd.DataFrame, share: float, seed: int, n_train: int = 0,
                        n_holdout: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training part, held-out part): a seeded `share` of the items is held out; held-out pairs join
    two held-out items, training pairs none, pairs across are dropped; then each part is subsampled
    to `n_train` / `n_holdout` pairs (0 = all). Also the protocol of bench/ccks_pairs.py."""
    rng = np.random.default_rng(seed)
    items = pd.unique(pd.concat([pairs["src_item_id"], pairs["tgt_item_id"]]))
    held = set(rng.permutation(items)[:int(round(share * len(items)))].tolist())
    src, tgt = pairs["src_item_id"].isin(held), pairs["tgt_item_id"].isin(held)
    return _subsample(pairs[~src & ~tgt], n_train, rng), _subsample(pairs[src & tgt], n_holdout, rng)


def holdout_split(pairs: pd.DataFrame, config: CcksRunConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stage's (training part, held-out part) of the train pairs (`item_disjoint_split`)."""
    return item_disjoint_split(pairs, config.holdout_items, config.seed, config.train_pairs, config.holdout_pairs)


def check_split(train: pd.DataFrame, holdout: pd.DataFrame, n_pairs: int, config: CcksRunConfig) -> None:
    """Both parts must be usable: training pairs, and held-out pairs of both labels."""
    where = f"{n_pairs} train pairs split with holdout_items={config.holdout_items}, seed {config.seed}"
    if not len(train):
        raise DataError(f"no training pairs left ({where}); lower holdout_items or add train pairs")
    labels = set(holdout["item_label"].tolist())
    if labels != {0, 1}:
        raise DataError(f"the held-out part has {len(holdout)} pairs with labels {sorted(labels)} ({where}); "
                        "thresholds need both labels: raise holdout_items or holdout_pairs")


def pseudo_unseen(holdout: pd.DataFrame, config: CcksRunConfig) -> list[str]:
    """A seeded share `unseen_share` of the held-out pairs' categories (at least one; none for share 0)."""
    cats = np.array(sorted(set(holdout["cate_a"]) | set(holdout["cate_b"])), dtype=object)
    if config.unseen_share == 0 or not len(cats):
        return []
    size = max(1, int(len(cats) * config.unseen_share))
    return sorted(np.random.default_rng(config.seed).choice(cats, size=size, replace=False).tolist())


def load_data(data_dir, config: CcksRunConfig, folder: Path) -> CcksData:
    """Read a CCKS folder, split the train pairs and build the pair frames and unseen masks."""
    from ..data.ccks import read_ccks_pairs
    from ..pairs.pvs import pair_frame
    from .ensemble import unseen_mask

    data_dir = Path(data_dir)
    items = read_items(data_dir)
    if not (data_dir / FILES["train_pairs"]).is_file():
        raise DataError(f"{data_dir}: no {FILES['train_pairs']}")
    train_all = read_ccks_pairs(data_dir / FILES["train_pairs"], items)
    valid, y_valid = read_valid(data_dir, items)
    train, holdout = holdout_split(train_all, config)
    check_split(train, holdout, len(train_all), config)
    train_f, hold_f, valid_f = (pair_frame(p, items) for p in (train, holdout, valid))
    cate = items.set_index("item_id")["cate_id"]
    seen = pd.unique(pd.concat([train_all["src_item_id"], train_all["tgt_item_id"]]).map(cate))
    unseen_valid = unseen_mask(valid_f["cate_a"], seen) | unseen_mask(valid_f["cate_b"], seen)
    pseudo = pseudo_unseen(hold_f, config)
    unseen_hold = (hold_f["cate_a"].isin(pseudo) | hold_f["cate_b"].isin(pseudo)).to_numpy()
    return CcksData(items, train_f, hold_f, valid_f, y_valid, unseen_hold, unseen_valid, pseudo, folder, config.seed)


def ccks_hashes(data_dir) -> dict:
    """SHA-256 of each CCKS file present in `data_dir`."""
    return data_hashes(data_dir, names=tuple(FILES.values()))


def tiny_backbone(data: CcksData) -> Path:
    """The tiny random BERT (``encoders.text.tiny_text_model``) with the data's ASCII words, built
    once per run under ``backbones/tiny-random``."""
    from ..encoders.text import tiny_text_model

    folder = data.folder / "backbones" / TINY_MODEL
    if not (folder / "config.json").is_file():
        texts = pd.concat([data.items[c] for c in ("title", "item_pvs", "sku_pvs") if c in data.items.columns])
        words = texts.fillna("").astype(str).str.split(r"[\s#:;]+", regex=True).explode().dropna().unique()
        with quiet_transformers():
            tiny_text_model(folder, sorted(words), seed=data.seed)
    return folder


@contextlib.contextmanager
def quiet_transformers():
    """No transformers progress bars (its one-shard "Writing model shards" bar) inside the block."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


# ---------------------------------------------------------------- members
@dataclass
class MemberScores:
    """A member's held-out and valid scores, and facts for run.json."""

    holdout: np.ndarray
    valid: np.ndarray
    info: dict = field(default_factory=dict)


MEMBERS: dict[str, type["Member"]] = {}
register_member = registrar(MEMBERS, "kind")


@dataclass(frozen=True)
class NoOptions:
    """A member kind without options."""


class Member:
    """A member kind: options are checked at construction (before any work), `score` does the work."""

    kind: ClassVar[str] = ""
    trainable: ClassVar[bool] = False
    options_class: ClassVar[type] = NoOptions

    def __init__(self, spec: MemberConfig, config: CcksRunConfig) -> None:
        self.spec, self.config = spec, config
        if spec.train and not self.trainable:
            raise DataError(f"member {spec.name!r}: kind {self.kind!r} is not trained; drop its train section")
        self.options = self.parse_options(spec, config)

    def parse_options(self, spec: MemberConfig, config: CcksRunConfig):
        return from_dict(self.options_class, dict(spec.options), f"member {spec.name!r} options")

    def score(self, data: CcksData, folder: Path, progress: bool) -> MemberScores:
        raise NotImplementedError


def _split_scores(scores: np.ndarray, n_holdout: int) -> MemberScores:
    return MemberScores(scores[:n_holdout], scores[n_holdout:])


def _scored_pairs(data: CcksData) -> pd.DataFrame:
    return pd.concat([data.holdout, data.valid], ignore_index=True)


@dataclass(frozen=True)
class TfidfCosineOptions:
    """``char`` (2-4-grams within words) or ``word`` TF-IDF of the titles."""

    analyzer: Literal["char", "word"] = "char"


@register_member("tfidf_cosine")
class TfidfCosine(Member):
    """TF-IDF title cosine, fitted on the titles of the held-out and valid pairs (texts only)."""

    options_class = TfidfCosineOptions

    def score(self, data: CcksData, folder: Path, progress: bool) -> MemberScores:
        from ..encoders.tfidf import TfidfConfig
        from ..pairs.unsupervised import text_cosine

        config = {"char": TfidfConfig.char(), "word": TfidfConfig(stop_words=None)}[self.options.analyzer]
        pairs = _scored_pairs(data)
        return _split_scores(text_cosine(pairs["title_a"], pairs["title_b"], config), len(data.holdout))


@register_member("pvs_jaccard")
class PvsJaccard(Member):
    """Jaccard of the aligned pvs ``key:value`` entry sets."""

    def score(self, data: CcksData, folder: Path, progress: bool) -> MemberScores:
        from ..pairs.unsupervised import pvs_jaccard

        pairs = _scored_pairs(data)
        return _split_scores(pvs_jaccard(pairs["pvs_a"], pairs["pvs_b"]), len(data.holdout))


class PairMember(Member):
    """A pair model (``PairModelConfig`` options, kind fixed by the member) trained with
    ``fit_pair_model`` on the training part; the held-out part picks checkpoint and threshold."""

    trainable = True

    def parse_options(self, spec: MemberConfig, config: CcksRunConfig):
        from ..pairs.base import PairModelConfig
        from ..pairs.pair_train import PairTrainConfig

        options = {"seed": config.seed, **spec.options}
        if options.setdefault("kind", self.kind) != self.kind:
            raise DataError(f"member {spec.name!r}: options.kind {options['kind']!r} contradicts kind {self.kind!r}")
        self.train_config = from_dict(PairTrainConfig, {"seed": config.seed, **spec.train}, f"member {spec.name!r} train")
        return from_dict(PairModelConfig, options, f"member {spec.name!r} options")

    def score(self, data: CcksData, folder: Path, progress: bool) -> MemberScores:
        from ..pairs.base import build_pair_model
        from ..pairs.pair_train import fit_pair_model, predict_pairs

        assets = tiny_backbone(data) if self.options.model == TINY_MODEL else None
        model = build_pair_model(self.options, assets=assets).to(torch_device(self.config.device))
        train = dataclasses.replace(self.train_config, progress=progress)
        fit = fit_pair_model(model, data.train, data.holdout, train, folder)
        scores = [predict_pairs(model, f, train.eval_batch_size, progress=progress) for f in (data.holdout, data.valid)]
        info = {"fit_f1": fit.best_f1, "fit_threshold": fit.best_threshold, "best_step": fit.best_step,
                "steps": fit.steps, "fit_seconds": round(fit.seconds, 2)}
        return MemberScores(scores[0], scores[1], info)


@register_member("cross")
class CrossMember(PairMember):
    """One-tower cross-encoder over the aligned pair text."""


@register_member("two_tower")
class TwoTowerMember(PairMember):
    """Two-tower pair model (projection, similarity or adaptive head)."""


def build_members(config: CcksRunConfig) -> list[Member]:
    """Every member of the config, its options checked."""
    return [MEMBERS[spec.kind](spec, config) for spec in config.members]


def score_members(members: list[Member], data: CcksData, progress: bool) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(held-out scores, valid scores) with one column per member, and each member's facts."""
    from tqdm.auto import tqdm

    hold, valid, info = {}, {}, {}
    for member in tqdm(members, desc="ccks members", disable=not progress):
        name, started = member.spec.name, time.time()
        result = member.score(data, data.folder / "members" / name, progress)
        hold[name], valid[name] = np.asarray(result.holdout, np.float64), np.asarray(result.valid, np.float64)
        info[name] = {"kind": member.kind, **result.info, "seconds": round(time.time() - started, 2)}
        log.info("ccks member %s (%s): %.1f s", name, member.kind, info[name]["seconds"])
    return pd.DataFrame(hold), pd.DataFrame(valid), info


# ---------------------------------------------------------------- rules, folds, entries, selection
@dataclass
class Fitted:
    """A rule fitted on some held-out rows. ``margin(scores, unseen)`` is the decision margin of any
    rows (member score columns + unseen mask); positive when ``margin > threshold``, ``>=`` when
    `inclusive`. `params` describe the fit (ensembles.json)."""

    margin: Callable[[pd.DataFrame, np.ndarray], np.ndarray]
    threshold: float = 0.0
    inclusive: bool = False
    params: dict = field(default_factory=dict)

    def predict(self, scores: pd.DataFrame, unseen: np.ndarray) -> np.ndarray:
        from .ensemble import decide

        return decide(self.margin(scores, unseen), self.threshold, self.inclusive)


@dataclass(frozen=True)
class Rule:
    """A named decision rule: ``fit(y, scores, unseen) -> Fitted`` on labelled rows (member score
    columns, pseudo-unseen mask). The one call fits every CV fold and the final rule."""

    name: str
    kind: str
    fit: Callable[[np.ndarray, pd.DataFrame, np.ndarray], Fitted]


def member_rule(column: str) -> Rule:
    """A member at its best threshold on the fitting rows (strict rule ``p > t``)."""
    def fit(y, scores, unseen):
        from .ensemble import fit_thresholds

        threshold = float(fit_thresholds(y, scores[[column]])[0])
        return Fitted(lambda s, u: s[column].to_numpy(np.float64), threshold, False, {"threshold": threshold})

    return Rule(f"member {column}", "member", fit)


def ensemble_rule(kind: str, calibrated: bool, unseen: bool) -> Rule:
    """An ensemble of every member column (``ensemble.make_ensemble(kind)``), on raw scores or on
    scores Platt-calibrated on the fitting rows, with or without unseen-category thresholds."""
    scale = "calibrated" if calibrated else "raw"

    def fit(y, scores, mask):
        from .compare import platt_apply, platt_fit, platt_params
        from .ensemble import make_ensemble

        models = platt_fit(scores, y) if calibrated else None

        def scaled(s):
            return platt_apply(models, s) if calibrated else s

        model = make_ensemble(kind).fit(y, scaled(scores), unseen=mask if unseen else None)
        params = {"scores": scale, "unseen": unseen, "ensemble": model.to_dict(),
                  **({"calibration": platt_params(models)} if calibrated else {})}
        return Fitted(lambda s, u: model.decision_function(scaled(s), unseen=u if unseen else None),
                      0.0, model.inclusive, params)

    return Rule(f"{kind} ensemble, {scale}" + (" + unseen thresholds" if unseen else ""), "ensemble", fit)


def entry_rules(columns, unseen: bool) -> list[Rule]:
    """Members in column order, then each ensemble kind raw, calibrated, and (when `unseen`, i.e.
    pseudo-unseen held-out pairs exist) raw and calibrated with unseen-category thresholds."""
    from .ensemble import ENSEMBLES

    rules = [member_rule(str(c)) for c in columns]
    for kind in ENSEMBLES:
        for with_unseen in (False, True) if unseen else (False,):
            rules += [ensemble_rule(kind, calibrated, with_unseen) for calibrated in (False, True)]
    return rules


@dataclass(frozen=True)
class Folds:
    """CV folds of the held-out pairs: `fold` per pair, the `scheme` (``group``: connected
    components kept whole; ``stratified``: by label only), `components` of the pair graph, and
    the fold count asked for (`requested`, before clamping to the label counts)."""

    fold: np.ndarray
    scheme: str
    components: int
    requested: int
    seed: int

    @property
    def k(self) -> int:
        return int(len(np.unique(self.fold)))

    def to_dict(self) -> dict:
        return {"folds": self.k, "requested": self.requested, "scheme": self.scheme,
                "components": self.components, "seed": self.seed}


def pair_components(src, tgt) -> np.ndarray:
    """Connected-component id of each pair in the graph whose nodes are items and edges the pairs."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    codes, _ = pd.factorize(pd.concat([pd.Series(src, dtype=object), pd.Series(tgt, dtype=object)], ignore_index=True))
    a, b = codes[:len(codes) // 2], codes[len(codes) // 2:]
    n = int(codes.max()) + 1 if len(codes) else 0
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1][a]


def selection_folds(y, groups, k: int, seed: int) -> Folds:
    """Seeded CV folds of labelled pairs (module docstring, step 5): `k` clamped to the smaller
    label count; group-aware (``StratifiedGroupKFold`` on `groups`) when at least k groups hold a
    positive and k a negative pair and every fold's complement holds both labels, else
    ``StratifiedKFold`` by label. Deterministic for a given (y, groups, k, seed)."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y, groups = np.asarray(y).astype(bool), np.asarray(groups)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    used = min(k, n_pos, n_neg)
    if used < 2:
        raise DataError(f"the held-out part has {len(y)} pairs ({n_pos} positive, {n_neg} negative); the "
                        "cross-validated selection needs at least 2 pairs of each label: raise holdout_items or "
                        "holdout_pairs")
    if used < k:
        log.warning("ccks: select_folds=%d clamped to %d (held-out pairs: %d positive, %d negative)",
                    k, used, n_pos, n_neg)
    n_groups = int(len(np.unique(groups)))
    fold = np.full(len(y), -1)
    if min(len(np.unique(groups[y])), len(np.unique(groups[~y]))) >= used:
        cv = StratifiedGroupKFold(n_splits=used, shuffle=True, random_state=seed)
        for i, (_, at) in enumerate(cv.split(np.zeros(len(y)), y, groups)):
            fold[at] = i
        rest = [y[fold != i] for i in range(used)]
        if (fold >= 0).all() and all((fold == i).any() and r.any() and not r.all() for i, r in enumerate(rest)):
            return Folds(fold, "group", n_groups, k, seed)
    cv = StratifiedKFold(n_splits=used, shuffle=True, random_state=seed)
    for i, (_, at) in enumerate(cv.split(np.zeros(len(y)), y)):
        fold[at] = i
    return Folds(fold, "stratified", n_groups, k, seed)


def cross_predict(rule: Rule, y: np.ndarray, scores: pd.DataFrame, unseen: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Out-of-fold decisions of `rule`: for each fold, ``rule.fit`` on the other folds predicts it."""
    pred = np.zeros(len(y), dtype=bool)
    for f in np.unique(fold):
        at = fold == f
        try:
            fitted = rule.fit(y[~at], scores[~at], unseen[~at])
        except DataError as err:
            raise DataError(f"{rule.name}: refitting on the CV folds other than fold {f} failed: {err}") from None
        pred[at] = fitted.predict(scores[at], unseen[at])
    return pred


@dataclass
class Entry:
    """A rule fitted on all held-out pairs: its in-sample held-out F1, its cross-validated held-out
    F1, its parameters and its valid margin (``margin > threshold`` is positive, ``>=`` when `inclusive`)."""

    name: str
    kind: str
    held_out_f1: float
    cv_f1: float
    valid_margin: np.ndarray
    threshold: float = 0.0
    inclusive: bool = False
    params: dict = field(default_factory=dict)

    @property
    def valid_pred(self) -> np.ndarray:
        from .ensemble import decide

        return decide(self.valid_margin, self.threshold, self.inclusive)


def fit_entries(rules: list[Rule], y, hold: pd.DataFrame, unseen_hold, valid: pd.DataFrame, unseen_valid,
                fold) -> list[Entry]:
    """Each rule fitted on all held-out rows (held-out F1 in-sample, valid margin) and cross-validated
    on `fold` (cv_f1). Takes no valid labels."""
    y = np.asarray(y).astype(np.int64)
    unseen_hold, unseen_valid = np.asarray(unseen_hold, bool), np.asarray(unseen_valid, bool)
    entries = []
    for rule in rules:
        fitted = rule.fit(y, hold, unseen_hold)
        held = pair_scores(y, fitted.predict(hold, unseen_hold)).f1
        cv = pair_scores(y, cross_predict(rule, y, hold, unseen_hold, np.asarray(fold))).f1
        entries.append(Entry(rule.name, rule.kind, held, cv, fitted.margin(valid, unseen_valid), fitted.threshold,
                             fitted.inclusive, fitted.params))
    return entries


def choose(entries: list[Entry]) -> Entry:
    """The entry with the best cross-validated held-out F1; the earliest on ties."""
    return entries[int(np.argmax([e.cv_f1 for e in entries]))]


# ---------------------------------------------------------------- artifacts
def score_table(data: CcksData, hold: pd.DataFrame, valid: pd.DataFrame, chosen: np.ndarray,
                folds: Folds) -> pd.DataFrame:
    """scores.parquet: one row per held-out / valid pair, member scores, label where known, unseen flag
    (held-out: pseudo-unseen), the held-out pairs' CV fold and the chosen entry's valid decision."""
    y_valid = data.y_valid if data.y_valid is not None else np.full(len(data.valid), pd.NA)
    parts = []
    for split, frame, scores, y, unseen, fold, pred in (
            ("holdout", data.holdout, hold, data.holdout["item_label"], data.unseen_holdout, folds.fold, None),
            ("valid", data.valid, valid, y_valid, data.unseen_valid, None, chosen)):
        part = frame[["src_item_id", "tgt_item_id", "cate_a", "cate_b"]].reset_index(drop=True)
        part.insert(0, "split", split)
        part = pd.concat([part, scores.reset_index(drop=True)], axis=1)
        part["item_label"] = pd.array(np.asarray(y, dtype=object), dtype="Int8")
        part["unseen"] = np.asarray(unseen, bool)
        part["cv_fold"] = pd.array(np.full(len(frame), pd.NA) if fold is None else fold, dtype="Int8")
        part["chosen"] = pd.array(np.full(len(frame), pd.NA) if pred is None else pred, dtype="boolean")
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def compare_table(entries: list[Entry], data: CcksData, chosen: Entry) -> pd.DataFrame:
    """compare.csv: per entry held-out F1 (in-sample), CV F1 (the choice) and valid F1 / P / R, seen
    and unseen F1 (needs the truth)."""
    y, unseen = data.y_valid, data.unseen_valid
    rows = []
    for e in entries:
        pred = e.valid_pred
        s, a, b = pair_scores(y, pred), pair_scores(y[~unseen], pred[~unseen]), pair_scores(y[unseen], pred[unseen])
        rows.append({"entry": e.name, "kind": e.kind, "held-out F1": round(e.held_out_f1, 4),
                     "cv F1": round(e.cv_f1, 4),
                     "valid F1": round(s.f1, 4), "P": round(s.precision, 4), "R": round(s.recall, 4),
                     "seen F1": round(a.f1, 4), "unseen F1": round(b.f1, 4), "chosen": e.name == chosen.name})
    return pd.DataFrame(rows)


def report_text(table: pd.DataFrame, data_dir, data: CcksData, chosen: Entry, folds: Folds, rescored) -> str:
    """report.md: what was run, the compare table, the result file's re-scored F1."""
    from ..report import markdown_table

    n_unseen = int(data.unseen_valid.sum())
    return "\n".join([
        f"# CCKS run: {data_dir}", "",
        f"{len(data.train)} training / {len(data.holdout)} held-out train pairs (item-disjoint), "
        f"{len(data.valid)} valid pairs ({len(data.valid) - n_unseen} seen / {n_unseen} unseen categories). "
        f"Every threshold and ensemble is fitted on the held-out pairs; unseen-category thresholds on the "
        f"held-out pairs of the pseudo-unseen categories {preview(data.pseudo_unseen)}. "
        f"\"held-out F1\": each rule fitted and scored on all held-out pairs (in-sample); \"cv F1\": "
        f"refitted on {folds.k - 1} of {folds.k} folds ({folds.scheme} folds, {folds.components} connected "
        f"components), F1 of the pooled out-of-fold decisions.", "",
        f"Submission entry ({SELECTION}): **{chosen.name}** (cv F1 {chosen.cv_f1:.4f}, "
        f"held-out F1 {chosen.held_out_f1:.4f}).", "",
        markdown_table(table), "",
        f"result.jsonl re-scored with the cosine scorer: F1 {rescored.f1:.4f} (P {rescored.precision:.4f}, "
        f"R {rescored.recall:.4f}).", ""])


@contextlib.contextmanager
def torch_threads(n: int):
    """Run a block with `n` torch CPU threads (0: leave them), restoring the count after."""
    if not n:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def torch_device(name: str) -> str:
    """``auto``: cuda when torch sees a GPU, else cpu."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise DataError("device 'cuda' asked for, but torch sees no GPU; use device: auto or cpu")
    return name


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse a folder that already holds files unless `overwrite` (an empty one is fine)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(f"{out} already holds a run; pass overwrite=True (--overwrite) to replace it")


# ---------------------------------------------------------------- the stage
def ccks_run(data_dir, config, out, *, overwrite: bool = False, progress: bool = True) -> dict:
    """Train / score the members, fit ensembles on the held-out pairs, write ``out/`` (module
    docstring). The submission entry is the best cross-validated held-out F1; returns a summary dict
    (``chosen``, ``chosen_cv_f1``, ``chosen_held_out_f1``, per entry ``cv_f1`` / ``held_out_f1`` /
    ``valid_f1``, ``chosen_valid``, the artifact paths)."""
    started = time.time()
    config = load_config(config, CcksRunConfig)
    out = Path(out)
    check_out(out, overwrite)
    members = build_members(config)
    with atomic_dir(out) as tmp, torch_threads(config.threads):
        data = load_data(data_dir, config, tmp)
        log.info("ccks: %d training / %d held-out / %d valid pairs", len(data.train), len(data.holdout), len(data.valid))
        hold, valid, info = score_members(members, data, progress)
        summary = write_run(tmp, data_dir, config, data, hold, valid, info, started)
    summary.update({k: out / v.name for k, v in summary.items() if isinstance(v, Path)}, out=out)
    log.info("ccks: chosen %s (cv F1 %.4f, held-out F1 %.4f)", summary["chosen"], summary["chosen_cv_f1"],
             summary["chosen_held_out_f1"])
    return summary


def write_run(folder: Path, data_dir, config: CcksRunConfig, data: CcksData, hold: pd.DataFrame,
              valid: pd.DataFrame, info: dict, started: float) -> dict:
    """Fit and cross-validate the entries, choose one, write every artifact into `folder`; the summary dict."""
    from ..encoders.oof import code_version
    from .ccks_output import write_decision_result

    y = data.holdout["item_label"].to_numpy(np.int64)
    folds = selection_folds(y, pair_components(data.holdout["src_item_id"], data.holdout["tgt_item_id"]),
                            config.select_folds, config.seed)
    rules = entry_rules(hold.columns, unseen=bool(data.unseen_holdout.any()))
    entries = fit_entries(rules, y, hold, data.unseen_holdout, valid, data.unseen_valid, folds.fold)
    chosen = choose(entries)
    held_out = {e.name: e.held_out_f1 for e in entries}
    cv = {e.name: e.cv_f1 for e in entries}
    log.info("ccks: %d-fold %s selection folds", folds.k, folds.scheme)
    write_json(folder / "ensembles.json", {
        "format": 2, "selection": SELECTION, "cv": folds.to_dict(), "chosen": chosen.name,
        "held_out_f1": held_out, "cv_f1": cv,
        "members": {e.name.removeprefix("member "): e.params for e in entries if e.kind == "member"},
        "pseudo_unseen_categories": data.pseudo_unseen,
        "ensembles": {e.name: e.params for e in entries if e.kind == "ensemble"}})
    with atomic_path(folder / "scores.parquet") as tmp:
        score_table(data, hold, valid, chosen.valid_pred, folds).to_parquet(tmp, index=False)
    result = write_decision_result(folder / "result.jsonl", data.valid[["src_item_id", "tgt_item_id"]],
                                   chosen.valid_margin, chosen.threshold, inclusive=chosen.inclusive)
    summary = {"run": folder / "run.json", "scores": folder / "scores.parquet", "ensembles": folder / "ensembles.json",
               "result": result, "compare": None, "report": None, "chosen": chosen.name,
               "chosen_cv_f1": chosen.cv_f1, "chosen_held_out_f1": chosen.held_out_f1, "cv_f1": cv,
               "held_out_f1": held_out, "valid_f1": None, "chosen_valid": None, "valid_pairs": len(data.valid),
               "cv": folds.to_dict()}
    if data.y_valid is not None:
        summary.update(write_scoring(folder, data_dir, data, entries, chosen, folds))
    record = {"stage": "ccks", "config": to_dict(config), "data_dir": str(data_dir), "data": ccks_hashes(data_dir),
              "code_version": code_version(), "members": info, "chosen": chosen.name,
              "chosen_cv_f1": chosen.cv_f1, "chosen_held_out_f1": chosen.held_out_f1,
              "chosen_valid": summary["chosen_valid"], "cv": folds.to_dict(),
              "split": {"train_pairs": len(data.train), "holdout_pairs": len(data.holdout),
                        "valid_pairs": len(data.valid), "valid_unseen_pairs": int(data.unseen_valid.sum()),
                        "holdout_pseudo_unseen_pairs": int(data.unseen_holdout.sum())},
              "seconds": round(time.time() - started, 2)}
    write_json(folder / "run.json", record)
    return summary


def write_scoring(folder: Path, data_dir, data: CcksData, entries: list[Entry], chosen: Entry, folds: Folds) -> dict:
    """compare.csv + report.md against the valid truth; the result file is re-scored as a check."""
    from .ccks_output import score_result_file

    table = compare_table(entries, data, chosen)
    truth = data.valid[["src_item_id", "tgt_item_id"]].assign(item_label=data.y_valid)
    rescored = score_result_file(folder / "result.jsonl", truth)
    write_csv(folder / "compare.csv", table)
    write_text(folder / "report.md", report_text(table, data_dir, data, chosen, folds, rescored))
    chosen_valid = {"f1": rescored.f1, "precision": rescored.precision, "recall": rescored.recall}
    return {"compare": folder / "compare.csv", "report": folder / "report.md", "table": table,
            "valid_f1": dict(zip(table["entry"], table["valid F1"])), "chosen_valid": chosen_valid}


__all__ = ["CcksRunConfig", "MemberConfig", "MEMBERS", "register_member", "Member", "MemberScores", "ccks_run",
           "holdout_split", "load_data", "TINY_MODEL", "Rule", "Fitted", "Entry", "member_rule", "ensemble_rule",
           "entry_rules", "selection_folds", "pair_components", "cross_predict", "fit_entries", "choose"]
