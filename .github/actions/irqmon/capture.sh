#!/usr/bin/env bash
# Run the firmware on QEMU under irqmon until it reaches IRQMON_UNTIL: writes IRQMON_OUT/trace.csv.
set -euo pipefail
: "${IRQMON_ELF:?the firmware image (input elf)}"
: "${IRQMON_TARGET:?the target profile (input target)}"
: "${IRQMON_UNTIL:?the function that ends the run (input until)}"
: "${IRQMON_OUT:?the output directory}"

mkdir -p "$IRQMON_OUT"
trace="$IRQMON_OUT/trace.csv"
irqmon attach --target "$IRQMON_TARGET" --qemu "$IRQMON_ELF" --until "$IRQMON_UNTIL" --unlimited -q -o "$trace"
echo "trace=$trace" >> "${GITHUB_OUTPUT:-/dev/null}"
