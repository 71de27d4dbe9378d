#!/usr/bin/env bash
# scripts/task_table.sh end to end on a tiny labelled set (in a folder whose
# name has spaces): the shipped default fuses it, the protocol trains a few
# steps per row, and the report has the rows ir, vis, mean, ivif-rt and a
# given model's row (the shipped ivif-light under another name).
#   task_table_small.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
src=$1 build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

data="$tmp/data dir"
python3 - "$data/msrs_seg" <<'EOF' || fail "could not write the tiny set"
# Plain-Python PNGs (no numpy/OpenCV needed): 8-bit gray or RGB.
import pathlib, random, struct, sys, zlib
def png(path, w, h, rows, channels):
    raw = b"".join(b"\0" + bytes(r) for r in rows)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0 if channels == 1 else 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
root = pathlib.Path(sys.argv[1])
for d in ("ir", "vis", "labels"):
    (root / d).mkdir(parents=True, exist_ok=True)
rnd = random.Random(3)
W, H = 64, 48
for i in range(8):
    x0, y0 = rnd.randrange(48), rnd.randrange(32)
    lab = [[2 if x0 <= x < x0 + 12 and y0 <= y < y0 + 12 else 0 for x in range(W)] for y in range(H)]
    ir = [[rnd.randrange(60) + (150 if v else 0) for v in row] for row in lab]
    vis = [[rnd.randrange(256) for _ in range(3 * W)] for _ in range(H)]
    png(root / "ir" / f"n{i}.png", W, H, ir, 1)
    png(root / "vis" / f"n{i}.png", W, H, vis, 3)
    png(root / "labels" / f"n{i}.png", W, H, lab, 1)
EOF

rc=0
(cd "$tmp" && BUILD_DIR="$build" TIMFUSION_DATA_DIR="$data" OUT="$tmp/out put" \
  timeout 300 bash "$src/scripts/task_table.sh" "light copy=$src/core/models/ivif-light.safetensors" \
  -- --steps 3 --seeds 2 --batch 2 --crop 32 --scale 1 --set task.eval_pairs=2 --quiet) > "$tmp/log" 2>&1 || rc=$?
cat "$tmp/log"
[ $rc -eq 0 ] || fail "task_table.sh exited $rc"
for row in ir vis mean ivif-rt "light copy"; do
  grep -q "^| $row | " "$tmp/log" || fail "no row \"$row\" in the printed report"
done
[ -f "$tmp/out put/downstream/report.png" ] || fail "no report.png"
[ "$(ls "$tmp/out put/fused/ivif-rt" | wc -l)" -eq 8 ] || fail "ivif-rt did not fuse the 8 pairs"
echo "task_table.sh: OK"
