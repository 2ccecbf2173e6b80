#!/usr/bin/env bash
# Analyze IRQMON_OUT/trace.csv into findings.json (every finding: the next baseline) and
# irqmon.sarif (every finding: code scanning compares branches itself). With IRQMON_BASELINE,
# new-findings.json holds only the findings that baseline does not have.
# The status output is irqmon's exit status for the findings that count (the new ones when there
# is a baseline): 0 none of severity error, 1 some. Findings never stop this script, so the
# report and the comment still happen; bad input (status 2) does.
set -euo pipefail
: "${IRQMON_OUT:?the output directory}"

trace="$IRQMON_OUT/trace.csv"
elf_args=()
if [ -n "${IRQMON_ELF:-}" ]; then
  elf_args=(--elf "$IRQMON_ELF")
fi

set +e
irqmon analyze "$trace" "${elf_args[@]}" --format json -o "$IRQMON_OUT/findings.json"
status=$?
set -e
findings="$IRQMON_OUT/findings.json"

if [ "$status" -le 1 ] && [ -n "${IRQMON_BASELINE:-}" ]; then
  set +e
  irqmon analyze "$trace" "${elf_args[@]}" --baseline "$IRQMON_BASELINE" --format json -o "$IRQMON_OUT/new-findings.json"
  status=$?
  set -e
  findings="$IRQMON_OUT/new-findings.json"
fi
if [ "$status" -gt 1 ]; then
  echo "::error::irqmon analyze failed with status $status (bad input)" >&2
  exit "$status"
fi

irqmon analyze "$trace" "${elf_args[@]}" --exit-zero --format sarif -o "$IRQMON_OUT/irqmon.sarif"

{
  echo "findings=$findings"
  echo "sarif=$IRQMON_OUT/irqmon.sarif"
  echo "status=$status"
} >> "${GITHUB_OUTPUT:-/dev/null}"
