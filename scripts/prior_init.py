#!/usr/bin/python3
"""A starting point for fine-tuning a detail-head network with the salient
prior (arch.h: salient_prior, detail_select, residual):

    scripts/prior_init.py IN.safetensors OUT.safetensors --gain G [--arch-out A.json] [KEY=VALUE ...]

Copies IN's weights, sets the architecture fields given (VALUE is JSON; e.g.
salient_prior=4 detail_select=true residual=false detail_coring=0), and zeroes
the last convolution except the two gain channels' biases, which become
logit(G / 2). The network then computes exactly the prior's fusion: base
weight sigmoid(0 + logit(p)) = p, no residual, every detail at gain G. Training
from there learns corrections to the prior; the rest of the network keeps IN's
features. The provenance keeps IN's and names the change.
"""
import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

LAST_CONV = "stem_out.3.conv2d."
HEAD_CHANNELS = 4  # z, r, g1, g2 per pixel of the s x s block (arch.h, detail head)


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--gain", type=float, required=True, help="initial detail gain, in (0, 2)")
    ap.add_argument("--arch-out", metavar="FILE", help="also write the new architecture's JSON here (timfusion-train --arch)")
    ap.add_argument("fields", nargs="*", metavar="KEY=VALUE")
    args = ap.parse_intermixed_args()
    if not 0 < args.gain < 2:
        ap.error("--gain must be in (0, 2): the head's gains are 2 sigmoid(g)")
    tensors, metadata = safetensors_io.load(args.src)
    arch = json.loads(metadata["timfusion.arch"])
    if arch.get("head") != "detail":
        sys.exit("prior_init.py: %s is not a detail-head network" % args.src)
    changes = []
    for field in args.fields:
        if "=" not in field:
            ap.error("expected KEY=VALUE, got %r" % field)
        key, value = field.split("=", 1)
        new = json.loads(value)
        changes.append("%s %s -> %s" % (key, json.dumps(arch.get(key)), json.dumps(new)))
        arch[key] = new
    weight, bias = tensors[LAST_CONV + "weight"], tensors[LAST_CONV + "bias"]
    s2 = arch.get("downscale", 1) ** 2
    if weight.shape[0] != HEAD_CHANNELS * s2:
        sys.exit("prior_init.py: %s's last convolution has %d outputs, not %d" % (args.src, weight.shape[0], HEAD_CHANNELS * s2))
    weight.zero_()
    bias.zero_()
    bias[2 * s2:] = math.log(args.gain / (2 - args.gain))  # 2 sigmoid(logit(G/2)) = G
    changes.append("last convolution zeroed, gain biases logit(%g / 2)" % args.gain)
    metadata = dict(metadata)
    metadata["timfusion.arch"] = json.dumps(arch, sort_keys=True, separators=(",", ":"))
    prov = json.loads(metadata.get("timfusion.provenance", "{}"))
    prov["prior_init"] = "; ".join(changes) + " (scripts/prior_init.py, from %s)" % os.path.basename(args.src)
    metadata["timfusion.provenance"] = json.dumps(prov, sort_keys=True, separators=(",", ":"))
    safetensors_io.save(args.dst, tensors, metadata)
    if args.arch_out:
        with open(args.arch_out, "w") as f:
            f.write(metadata["timfusion.arch"] + "\n")
    print("%s: %s" % (args.dst, "; ".join(changes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
