#!/usr/bin/env bash
# Writes docs/live-students.jpg: three held-out photos (make trainer-photos; eval split of
# trainer/photos.tsv), each as content | multistyle26 style 19 | live-style19 | multistyle26
# style 23 | live-style23, at 640x360 (cropped to 16:9), shown at 320x180.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./target/release/stylerd
PY=.deps/venv/bin/python
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
	$BIN stylize "$c.png" "$c-t19.png" --model multistyle26 --style 19 2>/dev/null
	$BIN stylize "$c.png" "$c-l19.png" --model live-style19 --style 0 2>/dev/null
	$BIN stylize "$c.png" "$c-t23.png" --model multistyle26 --style 23 2>/dev/null
	$BIN stylize "$c.png" "$c-l23.png" --model live-style23 --style 0 2>/dev/null
done
"$PY" - "$tmp" docs/live-students.jpg "${photos[@]}" <<'PY'
import sys
from PIL import Image, ImageDraw
tmp, out, photos = sys.argv[1], sys.argv[2], sys.argv[3:]
cols = ["", "-t19", "-l19", "-t23", "-l23"]
heads = ["content", "teacher, style 19", "live-style19", "teacher, style 23", "live-style23"]
w, h, top = 320, 180, 24
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
