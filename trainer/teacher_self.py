# How close the teacher comes to itself when its input changes imperceptibly: a reference for
# what "SSIM / PSNR to the teacher" can mean for a style (issue 13).
# .deps/venv/bin/python trainer/teacher_self.py TEACHER.onnx STYLE... [--eval EVAL_DIR] [--scaled WxH,...]
# For each held-out photo (frames as trainer/eval_live.py): the teacher's output for the photo
# against its output for (a) the photo moved 1 px sideways (compared where both exist, moved
# back), (b) the photo through JPEG quality 95 (PSNR to the photo about 41 dB). With --scaled,
# also (c) for each size, what the governor's reduced-size rung of the teacher shows: the photo
# scaled down to WxH and the output scaled back to 640x360 as the daemon scales them
# (live_metrics.daemon_resize), one line per size; the students' measure, comparable with
# trainer/eval_live.py's figures.
import io, os, sys, numpy as np, onnxruntime as ort
from PIL import Image
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from live_metrics import frame, to_input, to8, ssim, psnr, weights, daemon_resize, W, H
args = sys.argv[1:]
eval_dir = '.deps/photos/eval'
if '--eval' in args:
    i = args.index('--eval'); eval_dir = args[i + 1]; del args[i:i + 2]
scaled = []
if '--scaled' in args:
    i = args.index('--scaled')
    scaled = [tuple(int(v) for v in wh.split('x')) for wh in args[i + 1].split(',')]
    del args[i:i + 2]
teacher, styles = args[0], [int(a) for a in args[1:]]
so = ort.SessionOptions(); so.intra_op_num_threads = 2
t = ort.InferenceSession(teacher, so)
def run(img, k):
    return to8(t.run(None, {'image': to_input(img), 'style_weights': weights(k)})[0])
def jpeg(img, q):
    b = io.BytesIO(); Image.fromarray(img).save(b, 'JPEG', quality=q)
    return np.asarray(Image.open(b).convert('RGB'))
photos = [frame(os.path.join(eval_dir, f)) for f in sorted(os.listdir(eval_dir))]
for k in styles:
    shift, jpg, content, full = [], [], [], []
    for img in photos:
        y = run(img, k); full.append(y)
        ys = run(np.concatenate([img[:, 1:], img[:, -1:]], 1), k)
        a, b = y[:, 1:-1], ys[:, :-2]
        shift.append((ssim(a, b), psnr(a, b)))
        j = jpeg(img, 95); content.append(psnr(img, j))
        yj = run(j, k); jpg.append((ssim(y, yj), psnr(y, yj)))
    (s1, p1), (s2, p2) = np.mean(shift, 0), np.mean(jpg, 0)
    print(f"style {k}: 1 px shift SSIM {s1:.3f} PSNR {p1:.2f} dB; JPEG q95 (content {np.mean(content):.1f} dB) SSIM {s2:.3f} PSNR {p2:.2f} dB", flush=True)
    for w, h in scaled:
        r = []
        for img, y in zip(photos, full):
            yr = daemon_resize(run(daemon_resize(img, w, h), k), W, H)
            r.append((ssim(yr, y), psnr(yr, y)))
        s3, p3 = np.mean(r, 0)
        print(f"style {k}: teacher at {w}x{h}, scaled back: SSIM {s3:.3f} PSNR {p3:.2f} dB", flush=True)
