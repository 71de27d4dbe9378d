#!/usr/bin/python3
"""Rewrites a weight file's provenance so that it names no folder of the
machine it was made on: the shared data folder becomes ../shared/data (where
README says it lives beside a checkout) and the repository's own folder
becomes a path relative to the repository (runs of earlier sessions, made
in a runs folder beside it, become runs/). Only the metadata changes; every
tensor is written back byte for byte (checked).

    scripts/portable_provenance.py --data DATA_DIR IN.safetensors OUT.safetensors
"""
import argparse
import json
import pathlib
import sys

from safetensors_io import load, save

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the shared data folder the run read")
    ap.add_argument("input")
    ap.add_argument("output")
    args = ap.parse_args()
    tensors, meta = load(args.input)
    # Longest first: the data folder as the run named it (it may be spelt
    # through the repository, root/../shared/data), the repository, and the
    # runs folder the earlier models were made in, beside the repository.
    replacements = [(str(ROOT) + "/../shared/data", "../shared/data"),
                    (str(pathlib.Path(args.data).resolve()), "../shared/data"), (str(ROOT) + "/", ""),
                    (str(ROOT.parent / "runs") + "/", "runs/")]
    text = meta["timfusion.provenance"]
    for old, new in replacements:
        text = text.replace(old, new)
    prov = json.loads(text)
    prov["paths"] = ("folders are relative to the repository; the shared data is ../shared/data "
                     "(rewritten by scripts/portable_provenance.py)")
    meta["timfusion.provenance"] = json.dumps(prov)
    save(args.output, tensors, meta)
    again, _ = load(args.output)
    for name, t in tensors.items():
        if not (again[name].numpy().tobytes() == t.numpy().tobytes()):
            sys.exit(f"portable_provenance: tensor {name} changed")
    # No folder of this machine may be left: the repository's, its parent's (runs beside it) or the data's.
    for folder in (str(ROOT), str(ROOT.parent), str(pathlib.Path(args.data).resolve())):
        if folder + "/" in meta["timfusion.provenance"]:
            sys.exit(f"portable_provenance: the folder {folder} is left in the provenance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
