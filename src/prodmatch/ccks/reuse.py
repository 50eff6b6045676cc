"""Member scores taken over from an earlier CCKS run (``--reuse RUN``), so adding a member or changing an
ensemble does not retrain the others: a member is reused only when its whole spec, the data files and
the split settings are the same and the earlier run scored exactly these held-out and valid pairs."""
from __future__ import annotations


from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import to_dict
from ..errors import DataError
from ..io import read_json_object
from .config import CcksRunConfig
from .data import CcksData
from .members import MemberScores

SPLIT_FIELDS = ("seed", "holdout_items", "train_pairs", "holdout_pairs", "unseen_share")


@dataclass
class EarlierRun:
    """An earlier run's folder, its run.json and scores.parquet."""

    folder: Path
    record: dict
    scores: pd.DataFrame

    @classmethod
    def read(cls, folder) -> "EarlierRun":
        folder = Path(folder)
        paths = [folder / "run.json", folder / "scores.parquet"]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise DataError(f"--reuse {folder}: not a finished CCKS run (no {', '.join(missing)})")
        record = read_json_object(paths[0], "the run record")
        try:
            scores = pd.read_parquet(paths[1])
        except (OSError, ValueError) as err:  # pyarrow's errors for a truncated or foreign file
            raise DataError(f"{paths[1]}: not a readable scores file ({' '.join(str(err).split())[:200]})") from None
        return cls(folder, record, scores)

    def check_compatible(self, data: CcksData, config: CcksRunConfig) -> None:
        """DataError unless the earlier run read the same files with the same split settings."""
        if self.record.get("data") != data.hashes:
            raise DataError(f"--reuse {self.folder}: it read other data files than this run ({sorted(data.hashes)})")
        earlier, now = self.record.get("config", {}), to_dict(config)
        differ = [f for f in SPLIT_FIELDS if earlier.get(f) != now.get(f)]
        if differ:
            raise DataError(f"--reuse {self.folder}: split settings differ ({', '.join(differ)}), so would the pairs")

    def unchanged(self, config: CcksRunConfig) -> list[str]:
        """The members of `config` whose whole spec this run scored (they take its scores)."""
        specs = {m["name"]: m for m in self.record.get("config", {}).get("members", [])}
        return [m.name for m in config.members if specs.get(m.name) == to_dict(m) and m.name in self.scores.columns]

    def check_not_replaced(self, out: Path, config: CcksRunConfig) -> None:
        """DataError when `out`, the folder an ``--overwrite`` run replaces, is this run or holds the
        members/ of a member it reuses (a run that itself reused them): replacing it would delete the
        checkpoints the new run claims."""
        target = Path(out).resolve()
        if self.folder.resolve() == target:
            raise DataError(f"--reuse {self.folder} is the run --overwrite replaces; reuse it into another --out")
        info = self.record.get("members", {})
        trained_in = [name for name in self.unchanged(config)
                      if Path(str(info.get(name, {}).get("reused_from", self.folder))).resolve() == target]
        if trained_in:
            raise DataError(f"--reuse {self.folder}: member(s) {', '.join(trained_in)} were trained in {out}, the run "
                            "--overwrite replaces (their members/ would be deleted); write to another --out")

    def member_scores(self, config: CcksRunConfig, data: CcksData) -> dict[str, MemberScores]:
        """{member name: its earlier scores} for each member whose spec is unchanged."""
        same = self.unchanged(config)
        if not same:
            return {}
        hold = self.split_scores("holdout", data.holdout)
        valid = self.split_scores("valid", data.valid)
        info = self.record.get("members", {})
        # a member the earlier run itself reused still points at the run that trained it (its members/ folder)
        return {name: MemberScores(hold[name].to_numpy(np.float64), valid[name].to_numpy(np.float64),
                                   {**info.get(name, {}),
                                    "reused_from": info.get(name, {}).get("reused_from", str(self.folder))})
                for name in same}

    def split_scores(self, split: str, pairs: pd.DataFrame) -> pd.DataFrame:
        rows = self.scores[self.scores["split"] == split].reset_index(drop=True)
        key = ["src_item_id", "tgt_item_id"]
        if len(rows) != len(pairs) or not rows[key].astype(str).equals(pairs[key].astype(str).reset_index(drop=True)):
            raise DataError(f"--reuse {self.folder}: its {split} pairs are not this run's (same files and split "
                            "settings, so the split code changed); rerun the members")
        return rows
