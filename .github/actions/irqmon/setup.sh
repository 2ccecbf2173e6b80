#!/usr/bin/env bash
# Install what `irqmon attach --qemu` needs (qemu-system-arm, gdb-multiarch) when missing,
# then irqmon itself from IRQMON_PACKAGE (a pip spec; default: this action's own checkout).
set -euo pipefail

missing=()
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
command -v gdb-multiarch >/dev/null || missing+=(gdb-multiarch)
if [ ${#missing[@]} -gt 0 ]; then
  sudo apt-get update -qq
  sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

package=${IRQMON_PACKAGE:-}
if [ -z "$package" ]; then
  package=$(cd "$(dirname "$0")/../../.." && pwd)
fi
python -m pip install -q "$package"
irqmon --version
