#!/usr/bin/python3
"""Convert official TIM reference checkpoints (.pt state dicts saved by
LiuZhu-CV/TIMFusion) to a timfusion .safetensors weight file.

  convert_checkpoint.py --arch ivif-light weights_1_1169.pt -o ivif-light.safetensors
  convert_checkpoint.py --arch ivif-full  --stage1 weights_1_1059.pt --stage2 weights_2_1059.pt -o ivif-full.safetensors
  convert_checkpoint.py --arch mmif-pet   --stage1 weights_1_1149.pt --stage2 weights_2_1149.pt -o mmif-pet.safetensors

The reference scripts load with strict=False, which silently keeps random
weights for every key that does not match. This converter refuses that:
every key the architecture expects must be present with the right shape
and no unexpected key may remain. The only entries it fills in itself are
derived buffers that carry no learned information: the antialias blur
filters (`*.filt`, fixed [1,2,1]x[1,2,1]/16) and BatchNorm
`num_batches_tracked` counters (set to 0); the provenance lists them.

Handled wrappers: a `module.` prefix (DataParallel) and dicts that wrap the
state dict under 'state_dict' / 'model_state_dict' / 'model'.
Two-stage files hold both stages with the prefixes "stage1." and "stage2.".
"""
import argparse
import hashlib
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import tim_reference as R  # noqa: E402

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


class ConversionError(Exception):
    pass


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_pt(path, unsafe=False):
    """torch.load on CPU; weights_only unless --unsafe-pickle is given."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not unsafe)
    except TypeError:  # torch without weights_only
        obj = torch.load(path, map_location="cpu")
    except Exception as e:
        if unsafe:
            raise
        raise ConversionError("%s: cannot load as a plain state dict (%s). If you trust the file, "
                              "rerun with --unsafe-pickle." % (path, e))
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    for _ in range(3):  # unwrap nested wrappers
        if isinstance(obj, dict):
            for k in WRAPPER_KEYS:
                if k in obj and isinstance(obj[k], (dict, torch.nn.Module)):
                    obj = obj[k].state_dict() if isinstance(obj[k], torch.nn.Module) else obj[k]
                    break
            else:
                break
    if not isinstance(obj, dict):
        raise ConversionError("%s: expected a state dict, found %s" % (path, type(obj).__name__))
    sd = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise ConversionError("%s: entry %r is a %s, not a tensor" % (path, k, type(v).__name__))
        name = k[len("module."):] if k.startswith("module.") else k
        if name in sd:
            raise ConversionError("%s: key %r appears twice (with and without 'module.')" % (path, name))
        sd[name] = v
    return sd


def infer_channels(sd, path):
    w = sd.get("stem.2.conv2d.bias")
    if w is None:
        raise ConversionError("%s: no stem.2.conv2d.bias, cannot infer the width (give --channels)" % path)
    return int(w.shape[0])


def match(expected, sd, path, filled, notes):
    """Returns the converted state dict for one (sub)model or raises."""
    out = {}
    missing, bad = [], []
    casts = {}
    for k, ref in expected.items():
        if k not in sd:
            if k.endswith(".filt"):
                out[k] = R.blur_filter(ref.shape[0])
                filled.append(k)
            elif k.endswith(".num_batches_tracked"):
                out[k] = torch.zeros((), dtype=torch.int64)
                filled.append(k)
            else:
                missing.append(k)
            continue
        v = sd[k]
        if tuple(v.shape) != tuple(ref.shape):
            bad.append("%s %s (expected %s)" % (k, tuple(v.shape), tuple(ref.shape)))
            continue
        if ref.dtype == torch.int64:
            v = v.to(torch.int64)
        else:
            if not v.is_floating_point():
                bad.append("%s has dtype %s, expected floating point" % (k, v.dtype))
                continue
            if v.dtype != torch.float32:
                casts[str(v.dtype).replace("torch.", "")] = casts.get(str(v.dtype).replace("torch.", ""), 0) + 1
            v = v.to(torch.float32)
            if not torch.isfinite(v).all():
                bad.append("%s contains NaN/Inf" % k)
                continue
            if k.endswith(".filt") and not torch.allclose(v, R.blur_filter(ref.shape[0])):
                notes.append("%s differs from the standard [1,2,1]x[1,2,1]/16 blur filter (kept)" % k)
        out[k] = v.detach().clone().contiguous()
    for dt, n in sorted(casts.items()):
        notes.append("%s: %d tensors converted %s -> float32" % (os.path.basename(path), n, dt))
    unexpected = sorted(k for k in sd if k not in expected)
    if missing or unexpected or bad:
        msg = ["%s does not match the architecture (the reference's strict=False would silently "
               "keep random weights; refusing):" % path]
        if missing:
            msg.append("  %d missing: %s" % (len(missing), ", ".join(missing[:12]) + (" ..." if len(missing) > 12 else "")))
        if unexpected:
            msg.append("  %d unexpected: %s" % (len(unexpected), ", ".join(unexpected[:12])
                                                + (" ..." if len(unexpected) > 12 else "")))
        if bad:
            msg.append("  %d wrong: %s" % (len(bad), "; ".join(bad[:12])))
        raise ConversionError("\n".join(msg))
    return out


def convert(arch, files, output, channels=None, unsafe=False, metadata=True, note=None):
    base = R.arch_spec(arch)
    two = base["kind"] != "single"
    if two and len(files) != 2:
        raise ConversionError("architecture %s has two stages: give --stage1 and --stage2" % base["name"])
    if not two and len(files) != 1:
        raise ConversionError("architecture %s has one stage: give exactly one checkpoint" % base["name"])
    sds = [load_pt(f, unsafe) for f in files]
    if channels is None:
        channels = infer_channels(sds[0], files[0])
    spec = R.arch_spec(base, channels)
    model = R.build(spec)
    filled, notes = [], []
    if two:
        converted = {}
        for prefix, sub, sd, f in (("stage1.", model.stage1, sds[0], files[0]),
                                   ("stage2.", model.stage2, sds[1], files[1])):
            filled_stage = []
            for k, v in match(sub.state_dict(), sd, f, filled_stage, notes).items():
                converted[prefix + k] = v
            filled += [prefix + k for k in filled_stage]
    else:
        converted = match(model.state_dict(), sds[0], files[0], filled, notes)
    model.load_state_dict(converted, strict=True)

    prov = {"source": "converted official checkpoint",
            "files": [os.path.basename(f) for f in files],
            "sha256": [sha256(f) for f in files],
            "converter": "scripts/convert_checkpoint.py"}
    if filled:
        prov["filled_buffers"] = filled
    if notes:
        prov["notes"] = notes
    if note:
        prov["note"] = note
    meta = None
    if metadata:
        meta = {"timfusion.arch": R.spec_json(spec),
                "timfusion.provenance": json.dumps(prov, separators=(",", ":"), sort_keys=True)}
    safetensors_io.save(output, converted, meta)

    # Read back and load strictly into a fresh model.
    R.load_weights(output, None if metadata else spec)
    return spec, model, prov


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", required=True, help="ivif-light, ivif-full, mmif-ct, mmif-pet, mmif-spect or a JSON spec")
    p.add_argument("checkpoint", nargs="?", help="the .pt file of a single-stage architecture")
    p.add_argument("--stage1", help="stage-1 .pt (weights_1_*.pt) of a two-stage architecture")
    p.add_argument("--stage2", help="stage-2 .pt (weights_2_*.pt) of a two-stage architecture")
    p.add_argument("-o", "--output", required=True, help="output .safetensors")
    p.add_argument("--channels", type=int, default=None, help="network width (default: inferred from the checkpoint)")
    p.add_argument("--no-metadata", action="store_true", help="write no timfusion.* metadata")
    p.add_argument("--note", default=None, help="free text added to the provenance")
    p.add_argument("--unsafe-pickle", action="store_true",
                   help="allow full pickle loading (only for trusted files that are not plain state dicts)")
    a = p.parse_args(argv)
    if a.checkpoint and (a.stage1 or a.stage2):
        p.error("give either one checkpoint or --stage1/--stage2")
    files = [a.checkpoint] if a.checkpoint else [f for f in (a.stage1, a.stage2) if f]
    try:
        spec, model, prov = convert(a.arch, files, a.output, a.channels, a.unsafe_pickle,
                                    not a.no_metadata, a.note)
    except (ConversionError, ValueError, OSError) as e:
        print("convert_checkpoint: error: %s" % e, file=sys.stderr)
        return 1
    n = R.count_params(model)
    print("wrote %s: arch %s, C=%d, %d parameters, %d tensors%s" % (
        a.output, spec["name"], spec["channels"], n, len(model.state_dict()),
        (", filled %d derived buffers" % len(prov["filled_buffers"])) if "filled_buffers" in prov else ""))
    for line in prov.get("notes", []):
        print("note: %s" % line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
