"""Shared helpers of the benchmarks: data shaped like the paper's datasets, timing, peak memory, tables.

Everything here needs numpy and torch only (scipy when a CSR matrix is asked for), so the GPU benchmark
runs on a machine with torch + lightning alone. Each measured configuration runs in its own subprocess
(`run_child`), so the peak resident memory it reports (VmHWM) is its own.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfrec.io import atomic_write

ROOT = Path(__file__).resolve().parents[1]

#: (training users, items, training interactions) after Liang's preprocessing
SHAPES = {
    "ml-20m": (116_677, 20_108, 10_000_000),
    "msd": (471_355, 41_140, 33_600_000),
    "netflix": (383_435, 17_769, 50_000_000),
}


@dataclass
class SparseRows:
    """A user × item 0/1 matrix in CSR arrays (int64 indptr, int32 indices, float32 data)."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple[int, int]

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def scipy(self):
        import scipy.sparse as sp

        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)

    def torch_rows(self, index: np.ndarray, device="cpu"):
        """Rows `index` as a torch sparse CSR tensor (vectorised gather of the row segments, no scipy)."""
        import torch

        start, stop = self.indptr[index], self.indptr[index + 1]
        counts = stop - start
        crow = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(counts, out=crow[1:])
        take = np.repeat(start - crow[:-1], counts) + np.arange(crow[-1])
        return torch.sparse_csr_tensor(
            torch.from_numpy(crow),
            torch.from_numpy(self.indices[take].astype(np.int64)),
            torch.from_numpy(self.data[take]),
            size=(len(index), self.shape[1]),
            check_invariants=False,
        ).to(device)


def long_tail_rows(
    n_users: int,
    n_items: int,
    nnz: int,
    seed: int = 0,
    zipf_a: float = 1.2,
    zipf_offset: float = 50.0,
    sigma: float = 1.0,
    min_items: int = 5,
) -> SparseRows:
    """A 0/1 matrix with Zipf item popularity p_i ∝ (rank_i + offset)^−a (ranks shuffled over item ids) and
    log-normal user activity (≥ min_items), about `nnz` non-zeros in all; sorted column indices per row.

    Items are drawn with replacement and de-duplicated; users short of their target are topped up once, so
    the total lands within a few per cent of `nnz`. ~3 s for ML-20M's shape.
    """
    rng = np.random.default_rng(seed)
    weights = (np.arange(n_items) + zipf_offset) ** -zipf_a
    p = weights / weights.sum()
    item_of_rank = rng.permutation(n_items)
    mean = nnz / n_users
    target = np.clip(rng.lognormal(np.log(mean) - sigma**2 / 2, sigma, n_users), min_items, n_items // 2)
    target = np.maximum(np.round(target * nnz / target.sum()), min_items).astype(np.int64)
    cdf = np.cumsum(p)
    cdf[-1] = 1.0
    pairs = np.empty(0, dtype=np.int64)
    want = target.copy()
    for _ in range(3):  # draw, de-duplicate, top up the users that lost items to duplicates
        users = np.repeat(np.arange(n_users, dtype=np.int64), want)
        items = item_of_rank[np.searchsorted(cdf, rng.random(users.size))]
        pairs = np.unique(np.concatenate([pairs, users * n_items + items]))
        have = np.bincount(pairs // n_items, minlength=n_users)
        want = np.maximum(target - have, 0)
        if want.sum() < 0.001 * nnz:
            break
    users, items = pairs // n_items, pairs % n_items
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
    return SparseRows(indptr, items.astype(np.int32), np.ones(len(items), dtype=np.float32), (n_users, n_items))


def cache_dir() -> Path:
    return Path(os.environ.get("CFREC_BENCH_CACHE", "~/.cache/cfrec-bench")).expanduser()


def cached_rows(name: str, n_users: int | None = None, seed: int = 0) -> SparseRows:
    """`long_tail_rows` for a shape of SHAPES (the first `n_users` users, interactions scaled to match),
    cached as .npz under $CFREC_BENCH_CACHE (default ~/.cache/cfrec-bench): generating ML-20M's shape
    takes seconds to minutes on a loaded 2-core machine."""
    users, items, nnz = SHAPES[name]
    n_users = n_users or users
    nnz = round(nnz * n_users / users)
    cache = cache_dir()
    path = cache / f"{name}-{n_users}-{seed}.npz"
    if path.exists():
        f = np.load(path)
        return SparseRows(f["indptr"], f["indices"], f["data"], tuple(f["shape"]))
    rows = long_tail_rows(n_users, items, nnz, seed=seed)
    atomic_write(path, lambda f: np.savez(f, indptr=rows.indptr, indices=rows.indices, data=rows.data,
                                          shape=np.array(rows.shape)), suffix=".npz")
    return rows


def split_heldout(rows: SparseRows, test_prop: float = 0.2, seed: int = 1) -> tuple[SparseRows, SparseRows]:
    """Each row's items split at random into fold-in (1 − test_prop) and held-out (test_prop), as Liang."""
    rng = np.random.default_rng(seed)
    held = rng.random(rows.nnz) < test_prop
    user = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
    parts = []
    for keep in (~held, held):
        indptr = np.zeros(rows.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(user[keep], minlength=rows.shape[0]), out=indptr[1:])
        parts.append(SparseRows(indptr, rows.indices[keep], rows.data[keep], rows.shape))
    return parts[0], parts[1]


# --- measuring ----------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM) in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


class Timer:
    """Wall-clock seconds of a block (after synchronising CUDA when given a device)."""

    def __init__(self, device: str = "cpu"):
        self.device = device

    def sync(self):
        if str(self.device).startswith("cuda"):
            import torch

            torch.cuda.synchronize()

    def __enter__(self):
        self.sync()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.sync()
        self.seconds = time.perf_counter() - self.start


#: OpenMP threads sleep at once when idle instead of spinning. On a shared 2-core machine (load above the
#: core count) spinning workers steal the main thread's time slices and every small parallel region costs
#: milliseconds; the benchmarks set this for every child unless run with --omp-default.
OMP_PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}


def run_child(script: str | Path, args: list[str], timeout: float = 900, env_extra: dict | None = None) -> dict:
    """Run `python script args` in a fresh process; it prints one JSON line prefixed `RESULT ` (returned)."""
    env = dict(os.environ) | (env_extra or {})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(
        f"{script} {' '.join(args)} failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )


def emit(result: dict) -> None:
    """What a child prints for `run_child` (always with its own peak memory)."""
    result.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
    print("RESULT " + json.dumps(result), flush=True)


def table(rows: list[list[str]], header: list[str]) -> str:
    """A GitHub-markdown table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def machine() -> str:
    """CPU model, cores torch uses, AMX or not, torch version."""
    import platform

    import torch

    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: None)()
    return (
        f"{model}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"AMX {'yes' if amx else 'no' if amx is not None else '?'}, {platform.machine()}"
    )
