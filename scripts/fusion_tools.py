"""Shared by the report scripts (flicker_table.py, hard_cases.py): where the
build, the shared data and timfusion-fuse are, how a model is labelled, and
one call of timfusion-fuse."""
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent


def default_build():
    return os.environ.get("BUILD_DIR", str(ROOT / "build"))


def shipped_models():
    return sorted(p.stem for p in (ROOT / "core" / "models").glob("*.safetensors"))


def data_dir(build):
    """The shared data folder this build uses (meson.build writes it)."""
    return pathlib.Path(open(pathlib.Path(build) / "data_dir.txt").read().strip())


def label(model):
    """A shipped name, or a weight file's stem; a run folder's model.safetensors is named by its folder."""
    p = pathlib.Path(model)
    return p.parent.name if p.stem == "model" else p.stem


def fuse(build, model, ir, vis, output):
    """timfusion-fuse on one pair or two folders (pairs by name)."""
    tool = pathlib.Path(build) / "core" / "timfusion-fuse"
    subprocess.run([str(tool), "--quiet", "--model", model, "--ir", str(ir), "--vis", str(vis),
                    "--output", str(output)], check=True)
