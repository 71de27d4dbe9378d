#!/usr/bin/python3
"""timfusion-export: a timfusion weight file to an ONNX model, for ONNX Runtime,
TensorRT and other runtimes without LibTorch.

Written in Python because LibTorch 1.13's C++ API has no ONNX exporter; the
Python torch of the same release (Debian's python3-torch) has torch.onnx.
The weight file is validated by timfusion's own loader first
(`timfusion-fuse --check-model`: header, metadata, architecture, every
tensor's name, shape and type, the network built as the element builds it);
then the network is rebuilt here module for module (tim_onnx_net.py), loaded
under strict name/shape checks, BatchNorm folded, and traced.

Contract of the ONNX model (also stored in its metadata, key
timfusion.contract):
  inputs   ir   float32 [N,1,H,W]  infrared luma, grey level / 255 (0..1)
           vis  float32 [N,1,H,W]  visible luma (BT.601 Y), grey level / 255
  output   fused float32 [N,1,H,W] fused luma, 0..1 (clamped)
  N, H, W dynamic; H, W >= 8 (timfusion's smallest image); any H and W:
  the graph pads bottom/right by reflection to the network's multiple
  (its downscale) and crops back, as timfusion does.
  timfusion's 8-bit output is round(fused * 255), half to even.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import warnings

HERE = os.path.dirname(os.path.realpath(__file__))
# The modules lie beside this script in the build tree, in
# <prefix>/share/timfusion/python once installed.
for _d in (HERE, os.path.join(HERE, "..", "share", "timfusion", "python")):
    if os.path.isfile(os.path.join(_d, "tim_onnx_net.py")):
        sys.path.insert(0, _d)
        break

try:
    import torch  # noqa: E402
    import onnx  # noqa: E402,F401  (metadata and the graph check)

    import safetensors_io  # noqa: E402
    import tim_onnx_net  # noqa: E402
except ImportError as e:  # python3-torch, python3-numpy, python3-onnx are Recommends of timfusion-tools
    sys.exit("timfusion-export: %s (on Debian: apt install python3-torch python3-numpy python3-onnx)" % e)

OPSET = 17
TOOL = "timfusion-export"
CONTRACT = ("inputs ir, vis: float32 [N,1,H,W], luma grey level / 255 in [0,1] (vis: BT.601 Y); "
            "output fused: float32 [N,1,H,W] in [0,1], timfusion's 8-bit pixel is round(fused*255); "
            "N, H, W dynamic, H and W >= 8, padding to the network's multiple done inside the graph")


class Failure(Exception):
    pass


def find_checker():
    """timfusion-fuse: $TIMFUSION_FUSE, else beside this script (build tree and
    install share a folder), else on PATH."""
    env = os.environ.get("TIMFUSION_FUSE")
    if env:
        return env
    beside = os.path.join(HERE, "timfusion-fuse")
    return beside if os.access(beside, os.X_OK) else "timfusion-fuse"


def validated_by_core(model, arch_override):
    """Runs timfusion's loader on the file; returns (path, arch dict)."""
    cmd = [find_checker(), "--check-model", "--model", model] + (["--arch", arch_override] if arch_override else [])
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise Failure("cannot run %s to validate the weight file: %s" % (cmd[0], e.strerror))
    if r.returncode != 0:
        msg = r.stderr.strip().splitlines()
        raise Failure(msg[-1] if msg else "%s failed (exit %d)" % (cmd[0], r.returncode))
    try:
        info = json.loads(r.stdout)
        return info["path"], info["arch"]
    except (ValueError, KeyError) as e:
        raise Failure("%s --check-model printed no model description (%s)" % (cmd[0], e))


def export(net, path, opset):
    """Traces `net` at 64x48 (dynamic N, H, W) into an ONNX file."""
    ir = torch.rand(1, 1, 48, 64)
    vis = torch.rand(1, 1, 48, 64)
    axes = {0: "N", 2: "H", 3: "W"}
    # The tracer warns wherever Python arithmetic sees a size (the padding,
    # the median's rank): those become graph ops on the dynamic shape, checked
    # by the onnx-export test at sizes other than the traced one.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (ir, vis), path, opset_version=opset, input_names=["ir", "vis"],
                          output_names=["fused"], dynamic_axes={"ir": axes, "vis": axes, "fused": axes},
                          do_constant_folding=True)


def add_metadata(path, props):
    """Stores key/value strings in the model's metadata_props (needs python3-onnx)."""
    import onnx
    m = onnx.load(path)
    # The tracer's shape inference loses the output's channel count through
    # the pixel shuffle and the crop: state the contract's [N,1,H,W].
    for out in m.graph.output:
        dims = out.type.tensor_type.shape.dim
        for d, name in zip(dims, ("N", 1, "H", "W")):
            if name == 1:
                d.dim_value = 1
            else:
                d.dim_param = name
    for k, v in props.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(m)
    onnx.save(m, path)


def main(argv=None):
    ap = argparse.ArgumentParser(prog=TOOL, description="Writes a timfusion weight file as an ONNX model "
                                 "(opset %d; inputs ir, vis and output fused: [N,1,H,W] float32 luma in 0..1, "
                                 "N, H, W dynamic)." % OPSET)
    ap.add_argument("model", help="weights (.safetensors) or a shipped model name (ivif-rt, ivif-light)")
    ap.add_argument("-o", "--output", required=True, help="ONNX file to write")
    ap.add_argument("--arch", help="architecture for files without metadata (as timfusion-fuse --arch)")
    ap.add_argument("--version", action="version", version=TOOL + " (opset %d)" % OPSET)
    a = ap.parse_args(argv)
    try:
        path, arch = validated_by_core(a.model, a.arch)
        tim_onnx_net.check_exportable(arch)
        try:
            tensors, _ = safetensors_io.load(path)
        except (safetensors_io.SafetensorsError, OSError) as e:
            raise Failure(str(e))
        net = tim_onnx_net.build(arch, tensors)
        tmp = a.output + ".part"
        try:
            export(net, tmp, OPSET)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            add_metadata(tmp, {"timfusion.arch": json.dumps(arch, sort_keys=True), "timfusion.contract": CONTRACT,
                               "timfusion.weights_sha256": digest})
            os.replace(tmp, a.output)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    except (Failure, tim_onnx_net.ExportError) as e:
        print("%s: %s: %s" % (TOOL, a.model, e), file=sys.stderr)
        return 1
    print("%s: %s (%s) -> %s, opset %d" % (TOOL, path, arch.get("name", "?"), a.output, OPSET), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
