"""A model cfrec does not run itself, on cfrec's split: EASE (Steck 2019) in plain numpy, outside cfrec.

    python docs/examples/ease_numpy.py PRO_SG_DIR RANKINGS.csv [--lam 200] [--top-k 100]

Reads the files of `python -m cfrec.export vae_cf PRO_SG_DIR ...` with vae_cf's own loaders, fits EASE on
train.csv, scores the test users from test_tr.csv and writes their top-k (fold-in items excluded) as
`user,rank,item,score` with raw ids, for `python -m cfrec.rankings RANKINGS.csv ...`. No cfrec import:
this is what any other tool (RecVAE's or RaCT's code, RecBole, a notebook) has to do.
"""

import argparse

import numpy as np
import pandas as pd
from scipy import sparse


def load_train_data(csv_file, n_items):
    """vae_cf's loader of train.csv."""
    tp = pd.read_csv(csv_file)
    n_users = tp["uid"].max() + 1
    return sparse.csr_matrix((np.ones(len(tp)), (tp["uid"], tp["sid"])), shape=(n_users, n_items))


def load_tr_te_data(csv_file_tr, csv_file_te, n_items):
    """vae_cf's loader of a held-out part: (fold-in, held-out) rows numbered from the part's first uid."""
    tp_tr, tp_te = pd.read_csv(csv_file_tr), pd.read_csv(csv_file_te)
    start_idx = min(tp_tr["uid"].min(), tp_te["uid"].min())
    end_idx = max(tp_tr["uid"].max(), tp_te["uid"].max())
    shape = (end_idx - start_idx + 1, n_items)
    data_tr = sparse.csr_matrix((np.ones(len(tp_tr)), (tp_tr["uid"] - start_idx, tp_tr["sid"])), shape=shape)
    data_te = sparse.csr_matrix((np.ones(len(tp_te)), (tp_te["uid"] - start_idx, tp_te["sid"])), shape=shape)
    return data_tr, data_te, start_idx


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pro_sg")
    parser.add_argument("out")
    parser.add_argument("--lam", type=float, default=200.0)
    parser.add_argument("--top-k", type=int, default=100)
    args = parser.parse_args()
    unique_sid = pd.read_csv(f"{args.pro_sg}/unique_sid.txt", header=None, dtype=str)[0].to_numpy()
    unique_uid = pd.read_csv(f"{args.pro_sg}/unique_uid.txt", header=None, dtype=str)[0].to_numpy()
    n_items = len(unique_sid)
    train = load_train_data(f"{args.pro_sg}/train.csv", n_items)
    fold_in, _, first_uid = load_tr_te_data(f"{args.pro_sg}/test_tr.csv", f"{args.pro_sg}/test_te.csv", n_items)

    g = (train.T @ train).toarray()  # EASE: B = I − P / diag(P), P = (XᵀX + λI)⁻¹
    g[np.diag_indices(n_items)] += args.lam
    p = np.linalg.inv(g)
    b = -p / np.diag(p)
    b[np.diag_indices(n_items)] = 0.0
    scores = np.asarray(fold_in @ b)
    scores[fold_in.nonzero()] = -np.inf  # never recommend a fold-in item
    top = np.argsort(-scores, axis=1, kind="stable")[:, : args.top_k]
    user = np.repeat(unique_uid[first_uid + np.arange(fold_in.shape[0])], top.shape[1])
    frame = pd.DataFrame({"user": user, "rank": np.tile(np.arange(1, top.shape[1] + 1), fold_in.shape[0]),
                          "item": unique_sid[top.ravel()], "score": np.take_along_axis(scores, top, 1).ravel()})
    frame[np.isfinite(frame["score"])].to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
