#!/usr/bin/env bash
# The main job on a fresh machine: install dependencies, build, get stories260K, convert it to
# .kiln, and generate a story.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target kiln
scripts/get-default-model.sh
build/cli/kiln convert models/stories260K.bin --tokenizer models/tok512.bin -o models/stories260K.kiln
build/cli/kiln run -m models/stories260K.kiln -p "Once upon a time" -n 200 --temp 0.8 --seed 42
