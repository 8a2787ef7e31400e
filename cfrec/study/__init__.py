"""The paper's claims study on one dataset split as one command: `python -m cfrec.study` (conf/study.yaml).

settings.py checks the `study` options and the train.py overrides passed to every run; split.py prepares the split and
fingerprints it (stage 1); runs.py says what each run's overrides are and whether its folder holds it; launch.py hands
the missing runs to the configured Hydra launcher as one multirun; stages.py runs the stages (split, β search, runs,
report), each skipped when done; record.py keeps study.json and the mark of the command at work; status.py prints
`python -m cfrec.study status DIR`. docs/running.md ("Claims study") shows it end to end.
"""
