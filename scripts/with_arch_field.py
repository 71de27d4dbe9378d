#!/usr/bin/python3
"""A copy of a weight file with fields of its architecture changed that hold
no weights (e.g. the detail head's noise_coring or detail_coring), so that an
inference-time setting can be compared without retraining:

    scripts/with_arch_field.py IN.safetensors OUT.safetensors KEY=VALUE [KEY=VALUE ...]

VALUE is JSON (2, 1.5, true). The tensors are copied unchanged; the
provenance keeps the original's and adds a line naming the change, so the
file still says what it was trained on.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


def main():
    if len(sys.argv) < 4 or any("=" not in a for a in sys.argv[3:]):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src, dst = sys.argv[1], sys.argv[2]
    tensors, metadata = safetensors_io.load(src)
    arch = json.loads(metadata["timfusion.arch"])
    changes = []
    for arg in sys.argv[3:]:
        key, value = arg.split("=", 1)
        if key not in arch:
            print("with_arch_field.py: %s has no architecture field %r" % (src, key), file=sys.stderr)
            return 2
        new = json.loads(value)
        changes.append("%s %s -> %s" % (key, json.dumps(arch[key]), json.dumps(new)))
        arch[key] = new
    metadata = dict(metadata)
    metadata["timfusion.arch"] = json.dumps(arch, sort_keys=True, separators=(",", ":"))
    prov = json.loads(metadata.get("timfusion.provenance", "{}"))
    prov["arch_changed_after_training"] = "; ".join(changes) + " (scripts/with_arch_field.py, no weight changed)"
    metadata["timfusion.provenance"] = json.dumps(prov, sort_keys=True, separators=(",", ":"))
    safetensors_io.save(dst, tensors, metadata)
    print("%s: %s" % (dst, "; ".join(changes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
