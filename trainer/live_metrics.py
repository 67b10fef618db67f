# The frame preparation and the metrics of the live-student measurements (issue 13), shared by
# trainer/eval_live.py and trainer/teacher_self.py (`weights` also by eval_slim.py and
# time_onnx.py). Each photo is resized to cover 640x360 (PIL bilinear, antialiased) and
# centre-cropped; SSIM (BT.601 luma, 8x8 windows every 4 px, K1 0.01, K2 0.03, L 255) and
# PSNR (all channels) as in the daemon's src/quality.rs.
import numpy as np
from PIL import Image, ImageFilter
W, H = 640, 360
def frame(p):
    im = Image.open(p).convert('RGB'); s = max(W / im.width, H / im.height)
    nw, nh = max(W, round(im.width * s)), max(H, round(im.height * s))
    im = im.resize((nw, nh), Image.BILINEAR)
    l, t = (nw - W) // 2, (nh - H) // 2
    return np.asarray(im.crop((l, t, l + W, t + H)), np.uint8)
def weights(spec):
    # the teacher's style_weights for a style index (`19`) or a blend (`19:0.5,23:0.5`),
    # normalized to sum 1 as the daemon does
    sw = np.zeros(26, np.float32)
    for part in str(spec).split(','):
        k, _, w = part.partition(':')
        sw[int(k)] += float(w) if w else 1.0
    return sw / sw.sum()
def daemon_resize(img, w, h):
    # the daemon's resize_bilinear (src/frame.rs): two taps per axis at half-pixel centres, no
    # antialiasing, rounded to 8 bits; what a reduced-size governor rung does to a frame
    def axis(src, dst):
        x = np.maximum((np.arange(dst, dtype=np.float32) + 0.5) * np.float32(src / dst) - 0.5, 0)
        x0 = np.minimum(x.astype(np.int64), src - 1)
        return x0, np.minimum(x0 + 1, src - 1), (x - x0).astype(np.float32)
    (y0, y1, fy), (x0, x1, fx) = axis(img.shape[0], h), axis(img.shape[1], w)
    a = img.astype(np.float32); fx = fx[None, :, None]
    top = a[y0][:, x0] + (a[y0][:, x1] - a[y0][:, x0]) * fx
    bottom = a[y1][:, x0] + (a[y1][:, x1] - a[y1][:, x0]) * fx
    return (top + (bottom - top) * fy[:, None, None] + 0.5).astype(np.uint8)
def to_input(img): return (img.astype(np.float32) / 255).transpose(2, 0, 1)[None]
def to8(y): return (np.clip(y[0].transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)
def luma(a): a = a.astype(np.float64); return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
def box(a):  # means over 8x8 windows every 4 px
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
def colour_offset(a, b):  # mean over channels of (mean difference)^2: the MSE a global shift explains
    d = a.astype(np.float64) - b.astype(np.float64)
    return float((d.mean((0, 1)) ** 2).mean())
def coarse_mse(a, b, r=8):  # MSE left after a Gaussian blur of radius r: the large-scale error
    blur = lambda x: np.asarray(Image.fromarray(x).filter(ImageFilter.GaussianBlur(r)), np.float64)
    return float(((blur(a) - blur(b)) ** 2).mean())
