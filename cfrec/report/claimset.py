"""The claims family and its thresholds, from their one home `conf/claims.yaml`: each claim of the paper in its own
words (quote, section, the paper's figures), the two rows it compares and the relation it asserts, and the
significance level, equivalence margin and slight/far line fixed before any run.

A relation is an interval for the true Δ = row − against, in units of mean(against) (m: margin, L: line):
above (0, ∞), slightly above (0, L), not above (−∞, m), on a par (−m, m), slightly below (−L, 0), far below (−∞, −L).
A malformed file is a ConfigError naming it and the claim.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cfrec.config import CONFIG_DIR
from cfrec.errors import ConfigError
from cfrec.report.paper import METRICS, PAPER_CSV, load_paper
from cfrec.report.rows import row_label, rows

CLAIMS_YAML = CONFIG_DIR / "claims.yaml"
PAPER_DATASETS = ("ml-20m", "netflix", "msd")
_INF = math.inf
# relation -> (lower, upper) bound of Δ / mean(against), given (margin, line)
RELATIONS = {
    "above": lambda m, line: (0.0, _INF),
    "slightly above": lambda m, line: (0.0, line),
    "not above": lambda m, line: (-_INF, m),
    "on a par": lambda m, line: (-m, m),
    "slightly below": lambda m, line: (-line, 0.0),
    "far below": lambda m, line: (-_INF, -line),
}
RELATION_WORDS = {"above": "above", "slightly above": "slightly above", "not above": "not above",
                  "on a par": "on a par with", "slightly below": "slightly below", "far below": "far below"}


@dataclass(frozen=True)
class Thresholds:
    """The significance level, the equivalence margin and the slight/far line (fractions of mean(against))."""

    alpha: float
    margin: float
    line: float


@dataclass(frozen=True)
class Claim:
    """One claim: `row` stands in `relation` to `against`, in the paper's words (`quote`, its §`section`)."""

    id: str
    row: str
    against: str
    relation: str
    quote: str
    section: str
    paper: dict[str, tuple[float, float]]  # paper dataset -> (row's value of the metric, against's)
    reading: str = "paper"  # or "cfrec": a sharper reading of claim `of`
    of: str = ""

    def bounds(self, thresholds: Thresholds) -> tuple[float, float]:
        """The relation's interval for Δ / mean(against)."""
        return RELATIONS[self.relation](thresholds.margin, thresholds.line)

    @property
    def text(self) -> str:
        """`VAE+Vamp not above Mult-VAE`."""
        return f"{row_label(self.row)} {RELATION_WORDS[self.relation]} {row_label(self.against)}"


@dataclass(frozen=True)
class ClaimSet:
    """The family of claims, the metric they are about, the preset thresholds and those of the sensitivity table."""

    claims: tuple[Claim, ...]
    metric: str
    thresholds: Thresholds
    margins: tuple[float, ...]
    lines: tuple[float, ...]

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """The (row, against) pairs the claims compare, once each, in the claims' order."""
        return list(dict.fromkeys((c.row, c.against) for c in self.claims))


def _number(node: dict[str, Any], key: str, where: str) -> float:
    value = node.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
        raise ConfigError(f"{where}: `{key}` must be a number between 0 and 1, not {value!r}")
    return float(value)


def _claim(node: Any, where: str, published: dict[tuple[str, str], float]) -> Claim:
    if not isinstance(node, dict):
        raise ConfigError(f"{where}: a claim is a mapping with id, row, against, relation, quote, section, paper")
    missing = [k for k in ("id", "row", "against", "relation", "paper") if not node.get(k)]
    reading = str(node.get("reading") or "paper")
    missing += [k for k in (("quote", "section") if reading == "paper" else ("of",)) if not node.get(k)]
    if missing:
        raise ConfigError(f"{where}: claim {node.get('id', '?')!r} lacks {missing}")
    where = f"{where}: claim {node['id']!r}"
    unknown = [node[k] for k in ("row", "against") if node[k] not in rows()]
    unknown += [node["relation"]] if node["relation"] not in RELATIONS else []
    unknown += [reading] if reading not in ("paper", "cfrec") else []
    if unknown:
        raise ConfigError(f"{where}: unknown {unknown} (rows: conf/row/*.yaml; relations: {tuple(RELATIONS)}; "
                          "reading: paper or cfrec)")
    paper: dict[str, tuple[float, float]] = {}
    for dataset, pair in dict(node["paper"]).items():
        expected = tuple(published.get((dataset, row_label(node[k])), math.nan) for k in ("row", "against"))
        if not (isinstance(pair, list) and len(pair) == 2 and all(abs(float(x) - y) < 5e-4
                                                                  for x, y in zip(pair, expected))):
            raise ConfigError(f"{where}: paper.{dataset} {pair!r} is not paper.csv's {list(expected)}")
        paper[str(dataset)] = (float(pair[0]), float(pair[1]))
    return Claim(str(node["id"]), str(node["row"]), str(node["against"]), str(node["relation"]),
                 " ".join(str(node.get("quote") or "").split()), str(node.get("section") or ""), paper, reading,
                 str(node.get("of") or ""))


@functools.lru_cache(maxsize=4)
def load_claims(path: Path = CLAIMS_YAML) -> ClaimSet:
    """The claims file: every claim checked (known rows and relation, the paper's figures as in paper.csv, a cfrec
    reading's `of` naming a paper claim, whose quote and section it takes)."""
    try:
        node = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except (OSError, OmegaConfBaseException) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from exc
    if not isinstance(node, dict) or not isinstance(node.get("claims"), list):
        raise ConfigError(f"{path}: needs a `claims` list")
    metric = str(node.get("metric") or "ndcg@100")
    if metric not in METRICS:
        raise ConfigError(f"{path}: `metric: {metric}` is not one of {', '.join(METRICS)}")
    thresholds = Thresholds(*(_number(node, k, str(path)) for k in ("alpha", "margin", "line")))
    published = {(p.dataset, p.model): p.values[metric] for p in load_paper(PAPER_CSV)}
    claims = [_claim(c, str(path), published) for c in node["claims"]]
    ids = [c.id for c in claims]
    if len(set(ids)) < len(ids):
        raise ConfigError(f"{path}: claim ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
    by_id = {c.id: c for c in claims}
    for i, c in enumerate(claims):
        if c.reading == "cfrec":
            base = by_id.get(c.of)
            if base is None or base.reading != "paper":
                raise ConfigError(f"{path}: claim {c.id!r}: `of: {c.of}` is not a paper claim of this file")
            claims[i] = replace(c, quote=base.quote, section=base.section)
    sensitivity = node.get("sensitivity") or {}
    grid = {k: tuple(_number({k: v}, k, f"{path}: sensitivity") for v in sensitivity.get(k) or ())
            for k in ("margins", "lines")}
    return ClaimSet(tuple(claims), metric, thresholds, grid["margins"], grid["lines"])
