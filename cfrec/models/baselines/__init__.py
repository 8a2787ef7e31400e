"""Non-gradient baselines of the paper's §4.3 and Steck (2019): popularity, EASE, WMF, SLIM."""

from cfrec.models.baselines.ease import EASE
from cfrec.models.baselines.popularity import Popularity
from cfrec.models.baselines.slim import SLIM
from cfrec.models.baselines.wmf import WMF

__all__ = ["EASE", "Popularity", "SLIM", "WMF"]
