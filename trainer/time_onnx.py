# ONNX Runtime latency of image models at one frame size (issue 13 sweep):
# .deps/venv/bin/python trainer/time_onnx.py [--width 640 --height 360 --runs 30 --threads 1,2] MODEL.onnx...
# Median (and p90) of --runs runs after 5 warm-up runs, per thread count. Waits while
# /tmp/cpu-busy exists (another engineer's test suite) before each measurement.
import argparse, os, sys, time, numpy as np, onnxruntime as ort
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from live_metrics import weights
ap = argparse.ArgumentParser()
ap.add_argument('models', nargs='+'); ap.add_argument('--width', type=int, default=640)
ap.add_argument('--height', type=int, default=360); ap.add_argument('--runs', type=int, default=30)
ap.add_argument('--threads', default='1,2')
a = ap.parse_args()
x = np.random.default_rng(0).random((1, 3, a.height, a.width), dtype=np.float32)
def wait():
    while os.path.exists('/tmp/cpu-busy'):
        time.sleep(10)
for m in a.models:
    row = [os.path.basename(m)]
    for t in [int(v) for v in a.threads.split(',')]:
        so = ort.SessionOptions(); so.intra_op_num_threads = t; so.inter_op_num_threads = 1
        s = ort.InferenceSession(m, so, providers=['CPUExecutionProvider'])
        feed = {'image': x}
        if any(i.name == 'style_weights' for i in s.get_inputs()):
            feed['style_weights'] = weights(19)
        wait()
        for _ in range(5): s.run(None, feed)
        ts = []
        for _ in range(a.runs):
            t0 = time.perf_counter(); s.run(None, feed); ts.append((time.perf_counter() - t0) * 1000)
        ts.sort()
        row.append(f"{t}t p50 {ts[len(ts)//2]:.1f} ms p90 {ts[int(len(ts)*0.9)]:.1f}")
    print('  '.join(row), flush=True)
