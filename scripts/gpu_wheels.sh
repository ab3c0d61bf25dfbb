#!/usr/bin/env bash
# Prepare the wheels that scripts/gpu_check.sh installs on a GPU machine that cannot reach a package
# index. Run it on a machine that can (any OS; it downloads Linux x86-64 wheels for the target's
# Python). The GPU image is assumed to hold torch, torchvision, timm, numpy, pillow, pyyaml, tqdm,
# matplotlib, scipy, pytest and hypothesis (the H200 image used by the topoloc developers does);
# what topoloc needs beyond that is listed here.
#
#   bash scripts/gpu_wheels.sh [PYTHON_VERSION] [DEST]     (defaults: 3.12 and .whl)
#
# Then copy DEST beside the tree on the GPU machine (or carry it there) and run scripts/gpu_check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-3.12}
dest=${2:-.whl}
mkdir -p "$dest"
# kornia and its Rust core; pyproj (wheels bundle PROJ); albumentations on the MIT line (< 2.1) and
# its needs that the image lacks (albucore, stringzilla, simsimd, pydantic and pydantic's own); lazy_loader
# (`import topoloc` loads its names when first used).
wheels=(
  "kornia==0.9.0" "kornia_rs==0.2.0" "pyproj==3.7.2"
  "albumentations==2.0.8" "albucore==0.0.24" "stringzilla==5.3.2" "simsimd==6.5.16"
  "pydantic==2.14.4" "pydantic-core==2.50.5" "annotated-types==0.8.0" "typing-inspection==0.4.5"
  "pytest-timeout==2.4.0" "lazy_loader==0.6"
)
platforms=()
for n in 17 24 27 28 31 34 35; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
for w in "${wheels[@]}"; do
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
    "${platforms[@]}" -d "$dest" "$w"
done
ls -la "$dest"
