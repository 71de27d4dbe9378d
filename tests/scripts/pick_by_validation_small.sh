#!/usr/bin/env bash
# scripts/pick_by_validation.py on a tiny fake training pool: the validation
# subset is exactly the documented one (every 7th msrs_seg pair, every 8th
# RoadScene pair outside test50, all of llvip_sample and m3fd_sample), the
# table has one row per candidate, and the printed winner is the candidate
# with the most points (ties: the earlier one).
#   pick_by_validation_small.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
src=$1 build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

python3 - "$tmp/data" <<'EOF' || fail "could not write the tiny pool"
# Plain-Python 8-bit gray PNGs (no numpy/OpenCV needed).
import pathlib, random, struct, sys, zlib
def png(path, w, h, rows):
    raw = b"".join(b"\0" + bytes(r) for r in rows)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
root = pathlib.Path(sys.argv[1])
rnd = random.Random(5)
W, H = 64, 48
def pairs(ds, n, prefix):
    for side in ("ir", "vis"):
        (root / ds / side).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        x0, y0 = rnd.randrange(40), rnd.randrange(30)
        hot = lambda x, y: x0 <= x < x0 + 16 and y0 <= y < y0 + 12
        png(root / ds / "ir" / f"{prefix}{i:03d}.png", W, H,
            [[min(255, rnd.randrange(50) + (170 if hot(x, y) else 0)) for x in range(W)] for y in range(H)])
        png(root / ds / "vis" / f"{prefix}{i:03d}.png", W, H,
            [[(x * 4 + (y // 8) * 30 + rnd.randrange(20)) % 256 for x in range(W)] for y in range(H)])
pairs("msrs_seg", 15, "m")        # every 7th of 15: m006, m013
pairs("roadscene", 20, "r")       # 4 in test50, every 8th of the other 16: 2
(root / "roadscene" / "subsets").mkdir()
(root / "roadscene" / "subsets" / "cddfuse_test50.txt").write_text("r000\nr003\nr010\nr019\n")
pairs("llvip_sample", 2, "l")
pairs("m3fd_sample", 1, "f")
EOF

out="$tmp/pick"
python3 "$src/scripts/pick_by_validation.py" --build "$build" --data "$tmp/data" --out "$out" \
  rt="$src/core/models/ivif-rt.safetensors" light="$src/core/models/ivif-light.safetensors" > "$tmp/report.md" \
  || fail "pick_by_validation.py failed: $(cat "$tmp/report.md")"
cat "$tmp/report.md"

links=$(ls "$out/split/ir" | sort | tr '\n' ' ')
want="llvip_sample_l000.png llvip_sample_l001.png m3fd_sample_f000.png msrs_seg_m006.png msrs_seg_m013.png roadscene_r009.png roadscene_r018.png "
[ "$links" = "$want" ] || fail "validation subset: got '$links', want '$want'"
[ "$(ls "$out/split/vis" | wc -l)" = 7 ] || fail "validation subset: visible side"
grep -q "^Validation subset of the training pool: 7 pairs" "$tmp/report.md" || fail "pair count line"
rows=$(grep -cE '^\| (rt|light) \|' "$tmp/report.md")
[ "$rows" = 2 ] || fail "expected one table row per candidate, got $rows"
# The winner: most points (last column), ties to the earlier row.
best=$(awk -F'|' '/^\| (rt|light) \|/ { gsub(/ /, "", $2); gsub(/ /, "", $13); if (!seen || $13 > top) { top = $13; name = $2 }; seen = 1 }
                  END { print name }' "$tmp/report.md")
[ "$(tail -n 1 "$tmp/report.md")" = "$best" ] || fail "winner line '$(tail -n 1 "$tmp/report.md")', table says '$best'"
# Points: each candidate can beat the other on at most the 8 counted metrics.
awk -F'|' '/^\| (rt|light) \|/ { if ($13 + 0 > 8) exit 1 }' "$tmp/report.md" || fail "more than 8 points against one rival"
echo "pick_by_validation: OK"
