#!/usr/bin/env bash
# Puts stories260K (llama2.c checkpoint + tokenizer) into models/, from $KILN_MODELS when it is
# there, otherwise from its public home; either way checked against its known sha256.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=models
mkdir -p "$dest"
declare -A sha=(
  [stories260K.bin]=b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696
  [tok512.bin]=037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312
)
shared="${KILN_MODELS:-../shared/models}/llama2c"
base_url=https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K
for f in stories260K.bin tok512.bin; do
  if [ -f "$dest/$f" ] && echo "${sha[$f]}  $dest/$f" | sha256sum -c --quiet 2>/dev/null; then continue; fi
  if [ -f "$shared/$f" ]; then
    ln -sf "$(realpath "$shared/$f")" "$dest/$f"
  elif command -v curl >/dev/null && curl -fsSL -o "$dest/$f.part" "$base_url/$f"; then
    mv "$dest/$f.part" "$dest/$f"
  else
    rm -f "$dest/$f.part"
    echo "kiln: cannot get $f: not in $shared and the download from $base_url failed" >&2
    exit 1
  fi
  if ! echo "${sha[$f]}  $dest/$f" | sha256sum -c --quiet; then
    echo "kiln: $dest/$f does not have the expected sha256 ${sha[$f]}" >&2
    rm -f "$dest/$f"
    exit 1
  fi
done
