#!/usr/bin/env bash
# Write the pull-request report (report.md, report.html, figures) of IRQMON_OUT/trace.csv into
# IRQMON_OUT/report, showing the findings of IRQMON_FINDINGS (the analyze step's findings output).
set -euo pipefail
: "${IRQMON_OUT:?the output directory}"
: "${IRQMON_FINDINGS:?the findings JSON of the analyze step}"

elf_args=()
if [ -n "${IRQMON_ELF:-}" ]; then
  elf_args=(--elf "$IRQMON_ELF")
fi
report="$IRQMON_OUT/report"
irqmon report "$IRQMON_OUT/trace.csv" "${elf_args[@]}" --findings "$IRQMON_FINDINGS" --layout pr -o "$report"
echo "report=$report" >> "${GITHUB_OUTPUT:-/dev/null}"
