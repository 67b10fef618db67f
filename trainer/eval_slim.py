# Measures a slim student against its teacher (reproduces the trainer README numbers):
# .deps/venv/bin/python trainer/eval_slim.py SLIM.onnx TEACHER.onnx STYLE CONTENT.png OUT.png
import os, sys, time, numpy as np, onnxruntime as ort
from PIL import Image
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from live_metrics import weights
slim, teacher, style_k, content = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def load(p, w, h):
    im = Image.open(p).convert('RGB').resize((w, h), Image.BILINEAR)
    return (np.asarray(im, np.float32) / 255.0).transpose(2, 0, 1)[None]
def ssim(a, b):
    # global-luma SSIM over 8x8 windows (mean), a,b: [3,h,w] in 0..1
    ya = a.mean(0); yb = b.mean(0); C1, C2 = 0.01**2, 0.03**2; vals = []
    for y in range(0, ya.shape[0]-7, 4):
        for x in range(0, ya.shape[1]-7, 4):
            p, q = ya[y:y+8, x:x+8], yb[y:y+8, x:x+8]
            mp, mq = p.mean(), q.mean(); vp, vq = p.var(), q.var(); c = ((p-mp)*(q-mq)).mean()
            vals.append(((2*mp*mq+C1)*(2*c+C2))/((mp*mp+mq*mq+C1)*(vp+vq+C2)))
    return float(np.mean(vals))
so = ort.SessionOptions(); so.intra_op_num_threads = 1
s = ort.InferenceSession(slim, so); t = ort.InferenceSession(teacher, so)
sw = weights(style_k)
x = load(content, 640, 360)
ys = s.run(None, {'image': x})[0]; yt = t.run(None, {'image': x, 'style_weights': sw})[0]
def lat(f, n=5):
    f(); ts = []
    for _ in range(n):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return sorted(ts)[n // 2] * 1000
ls = lat(lambda: s.run(None, {'image': x})); lt = lat(lambda: t.run(None, {'image': x, 'style_weights': sw}))
print(f"content SSIM: slim {ssim(ys[0], x[0]):.3f}  multistyle26 {ssim(yt[0], x[0]):.3f}")
print(f"slim vs teacher: mean |diff| {np.abs(ys-yt).mean():.4f}, SSIM {ssim(ys[0], yt[0]):.3f}")
print(f"ORT 1 thread 640x360 latency: slim {ls:.1f} ms, multistyle26 {lt:.1f} ms")
row = np.concatenate([x[0], yt[0], ys[0]], 2).transpose(1, 2, 0)
Image.fromarray((np.clip(row, 0, 1) * 255).astype(np.uint8)).resize((720, 135)).quantize(128).save(sys.argv[5], optimize=True)
