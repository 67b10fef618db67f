#!/usr/bin/env bash
# `make bench-http`: POST /api/v1/stylize under load from wrk (a real HTTP load generator) on
# loopback, against `stylerd bench`'s engine-alone figure measured in the same run.
#
#   1. engine alone: `stylerd bench` at SIZE and THREADS (median ms -> images/s);
#   2. a daemon on a test source with its live stream paused: wrk at concurrency 1, 4 and 16
#      for DURATION s each (PNG in, PNG out; and JPEG in/out at 4): images/s, p50/p99, count
#      of each status code, daemon RSS before and after;
#   3. the live stream resumed: wrk at concurrency 4 again, with the live fps read from the
#      status meanwhile.
# Prints one table; ratios are against step 1. Env: MODEL (multistyle26), SIZE (640x360),
# THREADS (2), DURATION (20), NICE (the daemon's http.stylize-nice, 10).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./target/release/stylerd
MODEL=${MODEL:-multistyle26}
SIZE=${SIZE:-640x360}
THREADS=${THREADS:-2}
DURATION=${DURATION:-20}
NICE=${NICE:-10}
W=${SIZE%x*}
H=${SIZE#*x}
tmp=$(mktemp -d)
daemon=
cleanup() { [ -n "$daemon" ] && kill "$daemon" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

engine_alone() { # median ms of `stylerd bench` at SIZE and THREADS
	$BIN bench --model "$MODEL" --sizes "$SIZE" --threads "$THREADS" --iters 20 --e2e-frames 0 \
		> "$tmp/bench.json" 2> "$tmp/bench.err"
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["engine"][0]["ours_ms"]["median"])' "$tmp/bench.json"
}
echo "engine alone: stylerd bench --model $MODEL --sizes $SIZE --threads $THREADS" >&2
engine_ms=$(engine_alone)

# The request body: a real photo (an eval photo when present, else the test pattern) at SIZE.
photo=$(ls .deps/photos/eval/* 2>/dev/null | head -1 || true)
python3 - "$photo" "$W" "$H" "$tmp" <<'PY'
import sys, subprocess
photo, w, h, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
src = f"filesrc location={photo} ! decodebin ! imagefreeze num-buffers=1" if photo else "videotestsrc num-buffers=1"
for enc, ext in (("pngenc", "png"), ("jpegenc quality=90", "jpg")):
    subprocess.run(["gst-launch-1.0", "-q", *f"{src} ! videoconvert ! videoscale ! video/x-raw,width={w},height={h},format=RGB ! {enc} ! filesink location={out}/in.{ext}".split()], check=True)
PY

cat > "$tmp/post.lua" <<'LUA'
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init() codes = {} end
function response(status) codes[status] = (codes[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("codes")) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, k .. ":" .. v) end
  table.sort(parts)
  io.write(string.format("RESULT %.2f %.1f %.1f %s\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, table.concat(parts, ",")))
end
LUA

cat > "$tmp/c.toml" <<TOML
[source]
uri = "test://?pattern=ball"
[engine]
model = "$MODEL"
size = "$SIZE"
threads = $THREADS
[control]
allow-control = true
socket = "$tmp/s.sock"
[output]
uris = ["null://"]
[http]
listen = "127.0.0.1:0"
stylize-queue = 32
stylize-nice = $NICE
TOML
$BIN run --config "$tmp/c.toml" 2> "$tmp/daemon.log" &
daemon=$!
for _ in $(seq 100); do grep -q "web dashboard" "$tmp/daemon.log" && break; sleep 0.2; done
url=$(sed -n 's/.*web dashboard url=\(http:[^ ]*\).*/\1/p' "$tmp/daemon.log" | head -1)
url=${url%/}
[ -n "$url" ] || { cat "$tmp/daemon.log" >&2; exit 1; }
api() { curl -sf -X POST "$url/api/v1/$1" -H 'Content-Type: application/json' -d '{}' >/dev/null; }
rss() { awk '/VmRSS/ {print int($2/1024)}' /proc/$daemon/status; }
livefps() { curl -sf "$url/api/v1/status" | python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["fps"]["out"])'; }
sleep 3
api pause
# One warm-up request opens the stylize engine.
curl -sf -X POST "$url/api/v1/stylize" --data-binary @"$tmp/in.png" -o /dev/null
rss0=$(rss)
run() { # concurrency format(png|jpg)
	local c=$1 fmt=$2 q=""
	[ "$fmt" = jpg ] && q="?format=jpeg"
	BODY="$tmp/in.$fmt" wrk -t "$(( c < 4 ? c : 4 ))" -c "$c" -d "${DURATION}s" --timeout 30s \
		-s "$tmp/post.lua" "$url/api/v1/stylize$q" | sed -n 's/^RESULT //p'
}
engine_ips=$(python3 -c "print(1000/$engine_ms)")
printf '\nPOST /api/v1/stylize, %s %s, %s threads, %s s per row; engine alone (stylerd bench, same run): %.1f ms = %.2f images/s\n\n' \
	"$MODEL" "$SIZE" "$THREADS" "$DURATION" "$engine_ms" "$engine_ips"
printf '| live stream | concurrency | body | images/s | vs engine alone | p50 ms | p99 ms | status codes | live fps | RSS after, MiB |\n|---|---|---|---|---|---|---|---|---|---|\n'
row() { # live c fmt result livefps
	read -r ips p50 p99 codes <<< "$4"
	printf '| %s | %s | %s | %.2f | %.0f %% | %.0f | %.0f | %s | %s | %s |\n' "$1" "$2" "$3" "$ips" \
		"$(python3 -c "print(100*$ips/$engine_ips)")" "$p50" "$p99" "$codes" "$5" "$(rss)"
}
for c in 1 4 16; do row paused "$c" png "$(run "$c" png)" -; done
row paused 4 jpeg "$(run 4 jpg)" -
# The same rows again: RSS that keeps growing here would be a leak, not a high-water mark.
for c in 1 4 16; do row paused "$c" png "$(run "$c" png)" -; done
rss1=$(rss)
api resume
sleep 3
( sleep $(( DURATION / 2 )); livefps > "$tmp/fps" ) &
result=$(run 4 png)
wait $! 2>/dev/null || true
row running 4 png "$result" "$(cat "$tmp/fps")"
quiet=$(livefps)
printf '\ndaemon RSS: %s MiB after the warm-up request, %s MiB after the paused runs; live fps with no API load: %s (http.stylize-nice = %s)\n' \
	"$rss0" "$rss1" "$quiet" "$NICE"
# The reference again with the daemon gone: how far the machine itself drifted meanwhile.
kill "$daemon"; wait "$daemon" 2>/dev/null || true; daemon=
printf 'engine alone again after the runs: %.1f ms (%.1f ms at the start; rows are against the start)\n' \
	"$(engine_alone)" "$engine_ms"
