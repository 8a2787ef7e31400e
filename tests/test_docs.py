"""The commands and examples of README.md and docs/ still parse and compose, and what they say matches the code."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from cfrec.config import CONFIG_DIR, PROJECT_ROOT

DOCS = [PROJECT_ROOT / "README.md", PROJECT_ROOT / "docs" / "running.md", PROJECT_ROOT / "docs" / "reliability.md",
        PROJECT_ROOT / "conf" / "hydra" / "help" / "cfrec.yaml"]
_COMMAND = re.compile(r"python (train\.py|-m cfrec\.data)\b([^`#\n&;|]*)")


def documented_commands() -> list[tuple[str, str, list[str]]]:
    """(file, tool, overrides) of every `python train.py ...` / `python -m cfrec.data ...` in the docs; sweeps are
    kept as written, placeholders (`<stamp>`, `...`, `${...}`) and flags are dropped."""
    found = []
    for doc in DOCS:
        text = doc.read_text().replace("\\\n", " ")
        for match in _COMMAND.finditer(text):
            tokens = shlex.split(match.group(2).replace("[...]", ""), posix=True)
            overrides = [t for t in tokens if "=" in t and "<" not in t and "..." not in t and "$" not in t
                         and not t.startswith(("-", "["))]
            found.append((doc.name, match.group(1), overrides))
    return found


def first_of_each_sweep(overrides: list[str]) -> list[str]:
    """`model=mult,sivae` → `model=mult` (compose takes one value per key)."""
    out = []
    for override in OverridesParser.create().parse_overrides(overrides):
        text = override.input_line
        if override.is_sweep_override():
            key = text.split("=", 1)[0]
            text = f"{key}={next(iter(override.sweep_string_iterator()))}"
        out.append(text)
    return out


COMMANDS = documented_commands()


def test_the_docs_hold_the_commands_we_check():
    tools = {tool for _, tool, _ in COMMANDS}
    assert tools == {"train.py", "-m cfrec.data"} and len(COMMANDS) > 30
    assert ("README.md", "train.py", ["model=mult,sivae", "likelihood=multinomial,logistic"]) in COMMANDS


@pytest.mark.parametrize(("doc", "tool", "overrides"), COMMANDS, ids=[f"{d}:{' '.join(o)}" for d, _, o in COMMANDS])
def test_documented_command_composes(doc: str, tool: str, overrides: list[str]):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=first_of_each_sweep(overrides), return_hydra_config=True)
    assert cfg.dataset.name and cfg.model._target_


def test_readme_says_where_each_preset_looks_for_its_raw_files():
    readme = (PROJECT_ROOT / "README.md").read_text()
    for preset in sorted((CONFIG_DIR / "dataset").glob("*.yaml")):
        raw = OmegaConf.to_container(OmegaConf.load(preset), resolve=False).get("raw_path")
        for path in [raw] if isinstance(raw, str) else list(raw or []):
            if path.startswith("${paths.data_dir}/"):
                assert f"`{path.removeprefix('${paths.data_dir}/')}`" in readme, (preset.stem, path)


def test_report_help_says_when_table2_is_left_out(capsys: pytest.CaptureFixture[str]):
    from cfrec.report.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())  # argparse rewraps the help to the terminal's width
    assert exit_.value.code == 0
    assert "Table 2 for Mult-VAE (in both)" in shown and "only when no Table 3 row ran" in shown, shown


def test_wandb_docs_use_sync_as_the_installed_wandb_has_it():
    for doc in (PROJECT_ROOT / "docs" / "running.md", CONFIG_DIR / "logger" / "wandb.yaml"):
        text = doc.read_text()
        assert "wandb sync multirun/<stamp>/*/wandb/offline-run-*" in text
        assert "wandb sync --sync-all" not in text


@pytest.mark.slow
def test_readme_split_counts_match_the_data(shared_data: Path):
    """README's `python -m cfrec.data dataset=ml-1m-implicit` example shows the split's real counts."""
    from cfrec.data import CFDataModule

    readme = (PROJECT_ROOT / "README.md").read_text()
    example = json.loads(re.search(r'# (\{"train": \{[^}]*\})', readme).group(1) + "}")["train"]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["dataset=ml-1m-implicit", f"paths.data_dir={shared_data}"])
    options = {k: v for k, v in OmegaConf.to_container(cfg.dataset, resolve=True).items() if k != "_target_"}
    dm = CFDataModule(**options)
    dm.setup()
    assert dm.split.counts()["train"] == example
