"""onnxruntime on the bundled int8 MiniLM, for the side-by-side engine benchmark.

Run by `cargo bench -p engine-bench` (benches/engines.rs) as a child process, so its figures
come from the same run as rten's and tract's: it reads one JSON request on stdin
(`{"model", "loads", "warmup", "first_ids", "lengths": [{"n", "ids", "runs"}], "agreement":
[[ids...], ...]}`), and prints one JSON line: load times (InferenceSession creation, the
interpreter's own start excluded), the first run, warm per-length timings (each run timed
alone, one intra-op thread like the Lambda) and the mean-pooled, L2-normalised embeddings of
the agreement inputs (the Rust side computes the cosines).
"""

import json
import sys
import time

import numpy as np
import onnxruntime as ort


def session(model):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def feeds(sess, ids):
    x = np.asarray([ids], dtype=np.int64)
    by_name = {
        "input_ids": x,
        "attention_mask": np.ones_like(x),
        "token_type_ids": np.zeros_like(x),
    }
    return {i.name: by_name[i.name] for i in sess.get_inputs()}


def hidden(sess, ids):
    return sess.run(None, feeds(sess, ids))[0][0]


def pooled(sess, ids):
    v = hidden(sess, ids).mean(axis=0)
    return (v / max(np.linalg.norm(v), 1e-12)).astype(float).tolist()


def pct(xs, q):
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main():
    req = json.load(sys.stdin)
    load_ms = []
    sess = None
    for _ in range(req["loads"]):
        t = time.perf_counter()
        sess = session(req["model"])
        load_ms.append((time.perf_counter() - t) * 1e3)
    t = time.perf_counter()
    hidden(sess, req["first_ids"])
    first_ms = (time.perf_counter() - t) * 1e3
    tokens = {}
    for length in req["lengths"]:
        ids = length["ids"]
        for _ in range(req["warmup"]):
            hidden(sess, ids)
        times = []
        for _ in range(length["runs"]):
            t = time.perf_counter()
            hidden(sess, ids)
            times.append((time.perf_counter() - t) * 1e3)
        tokens[str(length["n"])] = {
            "runs": len(times),
            "p50_ms": pct(times, 0.5),
            "p99_ms": pct(times, 0.99),
            "mean_ms": sum(times) / len(times),
        }
    print(json.dumps({
        "version": ort.__version__,
        "load_ms_all": load_ms,
        "first_run_ms": first_ms,
        "tokens": tokens,
        "agreement": [pooled(sess, ids) for ids in req["agreement"]],
    }))


if __name__ == "__main__":
    main()
