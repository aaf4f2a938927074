#!/usr/bin/env python3
"""Train the router's tier classifier (models/router/classifier.json) from ../shared/data.

Reproducible: fixed seeds, pinned LightGBM, features written by the project's own embedder
(`tierwise features`, the code path the router serves with). Run through models/train.sh.

Labels. Each dataset's models are put on the pool's tiers by list price per million input
tokens (PRICES / tier_of below, written down in models/README.md). A tier's quality on a prompt
is the mean score of its TOP_K most accurate models on the training split (the models a
deployer would put first in that tier).

One gradient-boosted ensemble (LightGBM, cross-entropy on soft labels) scores a prompt's
*difficulty* = 1 - mean score of all the row's models. Two Platt calibrations of that score,
fitted on a validation split held out of the training files, give
  need_above_tier1 = P(tier1's answer is wrong)   (event: 1 - q_tier1)
  need_above_tier2 = P(tier2's answer is wrong)   (event: 1 - q_tier2)
so "confidence 0.85" for tier1 means an 85% chance the cheap tier answers correctly.
Why difficulty and not the strong-vs-weak gain: trained on the gain (or on "cheapest tier that
got it right") the trees learn which benchmark a prompt comes from and rank prompts of an
unseen benchmark no better than chance (leave-one-benchmark-out APGR 0.47-0.49, models/lobo.py);
difficulty is a denser, less noisy signal that transfers (0.58-0.67 on the RouterBench sets).
The gain peaks at middle difficulty, and a calibration onto it inverts that ranking (APGR
0.33-0.44), so the router escalates hopeless prompts too: see models/README.md.
"""
import hashlib
import json
import pathlib
import sys

import lightgbm as lgb
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
SEED = 20261128
TOP_K = 2
VAL_FRACTION = 0.15
ROUNDS = 200

# Price per 1M input tokens (USD) of each dataset's models, and the tier that price falls in:
# tier1 < $0.70, tier2 $0.70-$5, tier3 >= $5 (the default pool: tier1 $0.10-0.14,
# tier2 $0.15-3.00, tier3 $2.50-5.00).
PRICES = {
    # RouterBench (the benchmark's own price table)
    "mistralai/mistral-7b-chat": 0.2, "WizardLM/WizardLM-13B-V1.2": 0.3,
    "mistralai/mixtral-8x7b-chat": 0.6, "meta/code-llama-instruct-34b-chat": 0.776,
    "zero-one-ai/Yi-34B-Chat": 0.8, "meta/llama-2-70b-chat": 0.9, "claude-instant-v1": 0.8,
    "gpt-3.5-turbo-1106": 1.0, "claude-v1": 8.0, "claude-v2": 8.0, "gpt-4-1106-preview": 10.0,
}


def tier_of(model, prices):
    p = prices[model]
    return 1 if p < 0.7 else (2 if p < 5.0 else 3)


def load_jsonl(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def family(name):
    return name.split("_")[0]


def tier_members(rows, prices):
    """tier -> the TOP_K most accurate models of that tier on these (training) rows."""
    acc = {}
    for r in rows:
        for m, s in r["scores"].items():
            acc.setdefault(m, []).append(s)
    by_tier = {}
    for m, ss in acc.items():
        by_tier.setdefault(tier_of(m, prices), []).append((np.mean(ss), m))
    return {t: [m for _, m in sorted(v, reverse=True)[:TOP_K]] for t, v in by_tier.items()}


def difficulty(rows):
    """1 - mean score over every model scored on the row."""
    return np.array([1.0 - float(np.mean(list(r["scores"].values()))) for r in rows])


def labels(rows, members):
    """(tier1 wrong, tier2 wrong) per row: 1 - the tier's quality; nan where unknown."""
    out = []
    for r in rows:
        q = {}
        for t, ms in members.items():
            got = [r["scores"][m] for m in ms if m in r["scores"]]
            q[t] = float(np.mean(got)) if got else np.nan
        out.append((1.0 - q.get(1, np.nan), 1.0 - q.get(2, np.nan)))
    return np.array(out)


def load_features(feat_dir, name, rows):
    feats = {d["id"]: d["features"] for d in load_jsonl(feat_dir / f"{name}.features.jsonl")}
    return np.array([feats[r["id"]] for r in rows], dtype=np.float32).astype(np.float64)


def platt(raw, y, iters=200):
    """Fit sigmoid(a * raw + b) to soft labels y by Newton's method."""
    a, b = 1.0, 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(a * raw + b)))
        g = np.array([np.sum((p - y) * raw), np.sum(p - y)])
        w = p * (1 - p) + 1e-9
        h = np.array([[np.sum(w * raw * raw), np.sum(w * raw)], [np.sum(w * raw), np.sum(w)]])
        step = np.linalg.solve(h + 1e-6 * np.eye(2), g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)


def ece(p, y, bins=10):
    idx = np.minimum((p * bins).astype(int), bins - 1)
    return float(sum(abs(p[idx == k].mean() - y[idx == k].mean()) * (idx == k).mean()
                     for k in range(bins) if (idx == k).any()))


def flatten(tree):
    """LightGBM's nested tree dump -> flat arrays (child >= 0: node, child < 0: leaf ~child)."""
    nodes = {"split_feature": [], "threshold": [], "default_left": [], "left": [], "right": []}
    leaves = []

    def walk(n):
        if "leaf_index" in n or "leaf_value" in n and "split_feature" not in n:
            leaves.append(n["leaf_value"])
            return ~(len(leaves) - 1)
        if n.get("decision_type", "<=") != "<=":
            sys.exit(f"unsupported decision type {n.get('decision_type')}")
        i = len(nodes["split_feature"])
        for k in nodes:
            nodes[k].append(None)
        nodes["split_feature"][i] = n["split_feature"]
        nodes["threshold"][i] = n["threshold"]
        nodes["default_left"][i] = bool(n.get("default_left", True))
        nodes["left"][i] = walk(n["left_child"])
        nodes["right"][i] = walk(n["right_child"])
        return i

    root = walk(tree["tree_structure"])
    if root < 0:  # a single-leaf tree
        return {**{k: [] for k in nodes}, "leaf_value": leaves}
    return {**nodes, "leaf_value": leaves}


def main():
    data_dir = pathlib.Path(sys.argv[1])
    feat_dir = pathlib.Path(sys.argv[2])
    feature_names = json.loads(sys.argv[3])
    rng = np.random.default_rng(SEED)
    prices = dict(PRICES)
    prices.update({m: v["input_usd_per_m"] for m, v in
                   json.load(open(data_dir / "llmrouter_prices.json")).items()})

    train_names = sorted(p.stem for p in data_dir.glob("*_train.jsonl"))
    X, Y, W, is_val, groups = [], [], [], [], []
    members_by_family, per_file = {}, {}
    for name in train_names:
        rows = load_jsonl(data_dir / f"{name}.jsonl")
        val = rng.random(len(rows)) < VAL_FRACTION
        fam = family(name)
        if fam not in members_by_family:  # tiers' top models, from training rows only
            fam_rows = [r for n in train_names if family(n) == fam
                        for r in load_jsonl(data_dir / f"{n}.jsonl")]
            members_by_family[fam] = tier_members(fam_rows, prices)
        X.append(load_features(feat_dir, name, rows))
        Y.append(np.column_stack([labels(rows, members_by_family[fam]), difficulty(rows)]))
        is_val.append(val)
        groups += [fam] * len(rows)
        per_file[name] = len(rows)
    X, Y, is_val, groups = np.vstack(X), np.vstack(Y), np.concatenate(is_val), np.array(groups)
    # Each data family (LLMRouter, RouterBench) carries the same total weight.
    W = np.ones(len(X))
    for fam in set(groups):
        W[groups == fam] = len(X) / (len(set(groups)) * (groups == fam).sum())

    params = dict(objective="cross_entropy", learning_rate=0.03, num_leaves=7,
                  min_data_in_leaf=80, feature_fraction=0.3, bagging_fraction=0.8,
                  bagging_freq=1, lambda_l2=5.0, seed=SEED, deterministic=True,
                  num_threads=2, verbose=-1, force_col_wise=True)
    ok = ~np.isnan(Y[:, 2])
    tr = ok & ~is_val
    booster = lgb.train(params, lgb.Dataset(X[tr], Y[tr, 2], weight=W[tr]), num_boost_round=ROUNDS)
    raw = booster.predict(X, raw_score=True)
    calibration, report_heads = {}, {}
    for name, event in {"need_above_tier1": 0, "need_above_tier2": 1}.items():
        va = is_val & ~np.isnan(Y[:, event])
        a, b = platt(raw[va], Y[va, event])
        p_va = 1 / (1 + np.exp(-(a * raw[va] + b)))
        calibration[name] = {"a": a, "b": b}
        report_heads[name] = {"val_rows": int(va.sum()), "val_event_rate": float(Y[va, event].mean()),
                              "val_mean_prob": float(p_va.mean()),
                              "val_ece": ece(p_va, Y[va, event]), "platt": {"a": a, "b": b}}
        print(f"{name}: val ECE {report_heads[name]['val_ece']:.4f}", file=sys.stderr)
    trees = booster.dump_model()["tree_info"]

    out_dir = HERE / "router"
    out_dir.mkdir(exist_ok=True)
    artifact = {"format": "tierwise-gbdt-v1", "feature_names": feature_names,
                "trees": [flatten(t) for t in trees], "calibration": calibration,
                "training": {"library": f"lightgbm {lgb.__version__}", "seed": SEED,
                             "params": params, "rounds": ROUNDS, "top_k": TOP_K, "files": per_file,
                             "tier_members": {f: {f"tier{t}": m for t, m in sorted(v.items())}
                                              for f, v in members_by_family.items()}}}
    (out_dir / "classifier.json").write_text(json.dumps(artifact, separators=(",", ":")))
    # Check vectors: Rust's tree evaluator must reproduce LightGBM's raw scores on these.
    check_idx = np.flatnonzero(is_val)[:40]
    with open(out_dir / "check.jsonl", "w") as f:
        for i in check_idx:
            f.write(json.dumps({"features": X[i].tolist(), "raw": float(raw[i])}) + "\n")
    report = {"trees": len(trees), "train_rows": int(tr.sum()), "heads": report_heads, "training": artifact["training"],
              "sha256": hashlib.sha256((out_dir / "classifier.json").read_bytes()).hexdigest()}
    (out_dir / "training.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report_heads))


if __name__ == "__main__":
    main()
