# Student vs teacher on the held-out photos at 640x360 (issue 13):
# .deps/venv/bin/python trainer/eval_live.py STUDENT.onnx TEACHER.onnx STYLE [EVAL_DIR] [PREVIEW.png]
# Each photo is resized to cover 640x360 (PIL bilinear, antialiased) and centre-cropped, run
# through both models at 8 bits; SSIM (BT.601 luma, 8x8 windows every 4 px, K1 0.01, K2 0.03,
# L 255) and PSNR (all channels) as in the daemon's src/quality.rs.
import os, sys, numpy as np, onnxruntime as ort
from PIL import Image
student, teacher, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
eval_dir = sys.argv[4] if len(sys.argv) > 4 else '.deps/photos/eval'
W, H = 640, 360
def frame(p):
    im = Image.open(p).convert('RGB'); s = max(W / im.width, H / im.height)
    nw, nh = max(W, round(im.width * s)), max(H, round(im.height * s))
    im = im.resize((nw, nh), Image.BILINEAR)
    l, t = (nw - W) // 2, (nh - H) // 2
    return np.asarray(im.crop((l, t, l + W, t + H)), np.uint8)
def to8(y): return (np.clip(y[0].transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)
def luma(a): a = a.astype(np.float64); return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
def box(a):  # sums over 8x8 windows every 4 px
    c = np.pad(a.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    s = c[8:, 8:] - c[:-8, 8:] - c[8:, :-8] + c[:-8, :-8]
    return s[::4, ::4] / 64
def ssim(a, b):
    x, y = luma(a), luma(b); c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = box(x), box(y); vx, vy, cv = box(x * x) - mx * mx, box(y * y) - my * my, box(x * y) - mx * my
    return float((((2 * mx * my + c1) * (2 * cv + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))).mean())
def psnr(a, b):
    m = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean()
    return float('inf') if m == 0 else 10 * np.log10(255 ** 2 / m)
so = ort.SessionOptions(); so.intra_op_num_threads = 2
s = ort.InferenceSession(student, so); t = ort.InferenceSession(teacher, so)
sw = np.zeros(26, np.float32); sw[k] = 1
rows, tiles = [], []
for f in sorted(os.listdir(eval_dir)):
    img = frame(os.path.join(eval_dir, f)); x = (img.astype(np.float32) / 255).transpose(2, 0, 1)[None]
    yt = to8(t.run(None, {'image': x, 'style_weights': sw})[0]); ys = to8(s.run(None, {'image': x})[0])
    rows.append((f, ssim(ys, yt), psnr(ys, yt))); tiles.append(np.concatenate([img, yt, ys], 1))
    print(f"{f:50s} SSIM {rows[-1][1]:.4f}  PSNR {rows[-1][2]:.2f} dB", flush=True)
ss, ps = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
print(f"{len(rows)} photos: SSIM mean {ss.mean():.4f} min {ss.min():.4f}  PSNR mean {ps.mean():.2f} min {ps.min():.2f} dB")
if len(sys.argv) > 5:
    grid = np.concatenate(tiles[:4], 0)
    Image.fromarray(grid).resize((grid.shape[1] // 2, grid.shape[0] // 2), Image.BILINEAR).save(sys.argv[5], optimize=True)
