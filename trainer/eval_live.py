# Student vs teacher on the held-out photos at 640x360 (issue 13):
# .deps/venv/bin/python trainer/eval_live.py STUDENT.onnx TEACHER.onnx STYLE [EVAL_DIR] [PREVIEW.png]
# STYLE is a style index, or `all` for a conditional student (one taking the teacher's
# `style_weights`): then every one of the 26 styles, a line per style, and the means over all
# (photo, style) pairs; or a blend `A:wa,B:wb,...` of style indices (a conditional student
# only; the weights are normalized to sum 1, as the daemon does). Frames and metrics:
# trainer/live_metrics.py. Besides SSIM and PSNR per photo (per style), the last line but
# one splits the error: the share of the MSE that a global colour shift explains, and the
# share left after a radius-8 Gaussian blur of both (large-scale tone, not texture).
import os, sys, numpy as np, onnxruntime as ort
from PIL import Image
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from live_metrics import frame, to_input, to8, ssim, psnr, colour_offset, coarse_mse, weights
student, teacher = sys.argv[1], sys.argv[2]
styles = list(range(26)) if sys.argv[3] == 'all' else [sys.argv[3]]
eval_dir = sys.argv[4] if len(sys.argv) > 4 else '.deps/photos/eval'
so = ort.SessionOptions(); so.intra_op_num_threads = 2
s = ort.InferenceSession(student, so); t = ort.InferenceSession(teacher, so)
conditional = 'style_weights' in [i.name for i in s.get_inputs()]
photos = [(f, frame(os.path.join(eval_dir, f))) for f in sorted(os.listdir(eval_dir))]
rows, tiles, mse, offset, coarse = [], [], [], [], []
for k in styles:
    sw = weights(str(k))
    if not conditional and np.count_nonzero(sw) > 1:
        sys.exit(f"{student} has no style_weights input, so it cannot run the blend {k}.")
    feed = (lambda x: {'image': x, 'style_weights': sw}) if conditional else (lambda x: {'image': x})
    first = len(rows)
    for f, img in photos:
        x = to_input(img)
        yt = to8(t.run(None, {'image': x, 'style_weights': sw})[0]); ys = to8(s.run(None, feed(x))[0])
        rows.append((f, ssim(ys, yt), psnr(ys, yt))); tiles.append(np.concatenate([img, yt, ys], 1))
        mse.append(((ys.astype(np.float64) - yt) ** 2).mean()); offset.append(colour_offset(ys, yt)); coarse.append(coarse_mse(ys, yt))
        if len(styles) == 1:
            print(f"{f:50s} SSIM {rows[-1][1]:.4f}  PSNR {rows[-1][2]:.2f} dB", flush=True)
    if len(styles) > 1:
        r = rows[first:]
        print(f"style-{k:<3d} SSIM {np.mean([v[1] for v in r]):.4f}  PSNR {np.mean([v[2] for v in r]):.2f} dB", flush=True)
ss, ps = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
m = np.mean(mse)
print(f"MSE {m:.1f}: a global colour shift explains {np.mean(offset):.1f} ({100 * np.mean(offset) / m:.0f} %), {np.mean(coarse):.1f} ({100 * np.mean(coarse) / m:.0f} %) is left after a radius-8 blur")
over = f" (means over {len(styles)} styles)" if len(styles) > 1 else ""
print(f"{len(photos)} photos: SSIM mean {ss.mean():.4f} min {ss.min():.4f}  PSNR mean {ps.mean():.2f} min {ps.min():.2f} dB{over}")
if len(sys.argv) > 5:
    grid = np.concatenate(tiles[:4], 0)
    Image.fromarray(grid).resize((grid.shape[1] // 2, grid.shape[0] // 2), Image.BILINEAR).save(sys.argv[5], optimize=True)
