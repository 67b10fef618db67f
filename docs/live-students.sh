#!/usr/bin/env bash
# Writes docs/live-students.jpg: three held-out photos (make trainer-photos; eval split of
# trainer/photos.tsv), each as content, then multistyle26 and its live student for each
# shipped style (19, 23, 7, 10), at 640x360 (cropped to 16:9), shown at 240x135.
# `docs/live-students.sh all` writes docs/live-all.jpg instead: the student of all styles
# (live-all) against the teacher for three styles with no student of their own and a blend.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./target/release/stylerd
PY=.deps/venv/bin/python
if [ "${1:-}" = all ]; then
	STYLES=(3 12 17 0:0.5,12:0.5)
	OUT=docs/live-all.jpg
else
	STYLES=(19 23 7 10)
	OUT=docs/live-students.jpg
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
photos=(lomiri_Wine_by_Jakkub_Mede.jpg lomiri_aitzgorri_by_Aitzol_Berasategi.jpg
	lomiri_seeding_by_Clements_Engelhardt.jpg)
for p in "${photos[@]}"; do
	"$PY" - ".deps/photos/eval/$p" "$tmp/${p%.jpg}.png" <<'PY'
import sys
from PIL import Image, ImageOps
im = ImageOps.fit(Image.open(sys.argv[1]).convert("RGB"), (640, 360), Image.LANCZOS)
im.save(sys.argv[2])
PY
	c="$tmp/${p%.jpg}"
	for s in "${STYLES[@]}"; do
		$BIN stylize "$c.png" "$c-t$s.png" --model multistyle26 --style "$s" 2>/dev/null
		if [ "$OUT" = docs/live-all.jpg ]; then
			$BIN stylize "$c.png" "$c-l$s.png" --model live-all --style "$s" 2>/dev/null
		else
			$BIN stylize "$c.png" "$c-l$s.png" --model "live-style$s" --style 0 2>/dev/null
		fi
	done
done
"$PY" - "$tmp" "$OUT" "${STYLES[*]}" "${photos[@]}" <<'PY'
import sys
from PIL import Image, ImageDraw
tmp, out, styles, photos = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4:]
cols, heads = [""], ["content"]
for s in styles:
    cols += [f"-t{s}", f"-l{s}"]
    student = f"live-all, {s}" if out.endswith("live-all.jpg") else f"live-style{s}"
    heads += [f"teacher, style {s}", student]
w, h, top = 240, 135, 24
grid = Image.new("RGB", (w * len(cols), top + h * len(photos)), (20, 20, 20))
d = ImageDraw.Draw(grid)
for i, t in enumerate(heads):
    d.text((i * w + 8, 6), t, fill=(230, 230, 230))
for r, p in enumerate(photos):
    for c, suffix in enumerate(cols):
        im = Image.open(f"{tmp}/{p[:-4]}{suffix}.png").convert("RGB").resize((w, h), Image.LANCZOS)
        grid.paste(im, (c * w, top + r * h))
grid.save(out, quality=85)
PY
echo "wrote $OUT"
