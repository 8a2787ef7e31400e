"""Raw files → Liang et al.'s split → batches."""

from cfrec.data.datamodule import CFDataModule, prepare_split
from cfrec.data.split import Split

__all__ = ["CFDataModule", "Split", "prepare_split"]
