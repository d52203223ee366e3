#!/usr/bin/env bash
# Wheel check: build pcgen's wheel, install it into a fresh venv and use it as a new user would,
# from an empty folder: pcgen demo, pcgen tile, a 2-step pcgen train. The editable install the
# test suite runs on hides what the wheel leaves out (a package without __init__.py, configs or
# checkpoints outside package_data); this check does not.
#
#   .ci/wheel_check.sh [TEST_VENV]    (default: .venv beside this folder)
#
# The fresh venv sees TEST_VENV's site-packages through a .pth file so torch 2.13.0 and the other
# dependencies are not downloaded again; pip still resolves the wheel's requirements, and pcgen
# itself must import from the fresh venv (checked). Sample data: $PCGEN_DATA, else ../shared/data.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
test_venv=$(cd "${1:-$repo/.venv}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/pcgen-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT
export PCGEN_DATA=${PCGEN_DATA:-$repo/../shared/data}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
step() { echo "== wheel check: $*" >&2; }

step "build the wheel"
"$test_venv/bin/python" -m pip wheel --no-build-isolation --no-deps "$repo" -w "$work/dist" -q
wheel=$(ls "$work"/dist/pcgen-*.whl)
"$test_venv/bin/python" - "$wheel" "$repo" <<'EOF'
import pathlib, sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
repo = pathlib.Path(sys.argv[2])
want = {p.relative_to(repo).as_posix() for p in (repo / "pcgen").rglob("*")
        if p.suffix in (".py", ".yaml", ".ckpt", ".json") and "__pycache__" not in p.parts}
missing = sorted(want - names)
assert not missing, f"the wheel lacks {len(missing)} package files: {missing[:8]}"
EOF

step "fresh venv: torch 2.13.0 first, then $(basename "$wheel")"
"$test_venv/bin/python" -m venv "$work/venv"
venv_py=$work/venv/bin/python
site=$("$venv_py" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
"$test_venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > "$site/_reuse_test_venv.pth"
"$venv_py" -m pip install -q torch==2.13.0
"$venv_py" -m pip install -q "$wheel"

mkdir "$work/empty"
cd "$work/empty"
"$venv_py" - "$work/venv" <<'EOF'
import importlib.util, os, sys
import pcgen
venv = os.path.realpath(sys.argv[1])
assert os.path.realpath(pcgen.__file__).startswith(venv + os.sep), f"pcgen imported from {pcgen.__file__}"
if os.environ.get("PCGEN_NO_EXT") != "1":
    assert importlib.util.find_spec("pcgen._C") is not None, "the wheel has no compiled kernels (pcgen._C)"
print(f"pcgen from {os.path.dirname(pcgen.__file__)}", file=sys.stderr)
EOF
pcgen=$work/venv/bin/pcgen

step "pcgen demo demo_out"
"$pcgen" demo demo_out
for f in filled.laz filled.png eval/eval_fill.md eval/eval_fill.png; do
    [ -s "demo_out/$f" ] || { echo "wheel check: pcgen demo wrote no demo_out/$f" >&2; exit 1; }
done

step "pcgen tile + 2-step pcgen train debug=tiny"
"$pcgen" tile "$PCGEN_DATA/lidar/warsaw_small.las" tiles --size 11 --buffer 0 --min-points 64 --no-overview
"$pcgen" train debug=tiny model=flow_matching encoder=pointnet data.tile_dir="$PWD/tiles" \
    trainer.max_steps=2 callbacks=default callbacks.last.every_n_train_steps=2 \
    callbacks.best.every_n_train_steps=2 callbacks.samples.every_n_steps=0 hydra.run.dir="$PWD/run"
"$venv_py" - <<'EOF'
import torch
ckpt = torch.load("run/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
assert ckpt["global_step"] == 2, ckpt["global_step"]
from omegaconf import OmegaConf
cfg = OmegaConf.load("run/.hydra/config.yaml")  # debug=tiny's width overlays came with the wheel
assert list(cfg.encoder.local_channels) == [16] and cfg.model.time_dim == 16, cfg.encoder
EOF
step "passed"
