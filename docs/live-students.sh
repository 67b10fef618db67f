#!/usr/bin/env bash
# Writes docs/live-students.jpg: three held-out photos (make trainer-photos; eval split of
# trainer/photos.tsv), each as content, then multistyle26 and its live student for each
# shipped style (19, 23, 7, 10), at 640x360 (cropped to 16:9), shown at 240x135.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./target/release/stylerd
PY=.deps/venv/bin/python
STYLES=(19 23 7 10)
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
		$BIN stylize "$c.png" "$c-l$s.png" --model "live-style$s" --style 0 2>/dev/null
	done
done
"$PY" - "$tmp" docs/live-students.jpg "${STYLES[*]}" "${photos[@]}" <<'PY'
import sys
from PIL import Image, ImageDraw
tmp, out, styles, photos = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4:]
cols, heads = [""], ["content"]
for s in styles:
    cols += [f"-t{s}", f"-l{s}"]
    heads += [f"teacher, style {s}", f"live-style{s}"]
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
echo "wrote docs/live-students.jpg"
