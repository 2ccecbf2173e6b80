#!/usr/bin/env bash
# Install everything irqmon needs on Debian bookworm (run as root): the ARM toolchain,
# gdb-multiarch, OpenOCD, QEMU >= 8.0 from bookworm-backports, and the Python package in .venv.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v arm-none-eabi-gcc >/dev/null || need_apt+=(gcc-arm-none-eabi)
[ -e /usr/lib/arm-none-eabi/newlib/thumb/v7e-m+fp/hard/libc.a ] || need_apt+=(libnewlib-arm-none-eabi)
command -v gdb-multiarch >/dev/null || need_apt+=(gdb-multiarch)
[ -x /usr/bin/time ] || need_apt+=(time)  # GNU time: the analyzer benchmark reads peak RSS from it
command -v gcc >/dev/null || need_apt+=(gcc)  # builds the QEMU recorder plugin
[ -e /usr/include/stdio.h ] || need_apt+=(libc6-dev)
command -v openocd >/dev/null || need_apt+=(openocd)  # the tests check OpenOCD config names against it

qemu_ok() {
  command -v qemu-system-arm >/dev/null || return 1
  local major
  major=$(qemu-system-arm --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n1)
  [ "${major:-0}" -ge 8 ]
}

enable_backports() {
  # Add bookworm-backports to the suites the machine already uses; no host name is written here.
  grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ && return 0
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    if grep -qE '^Suites:(.* )?bookworm( |$)' "$f"; then
      # deb822: extend the first stanza that lists plain bookworm.
      sed -i -E '0,/^Suites:(.* )?bookworm( |$)/ s/^(Suites:(.* )?bookworm( .*)?)$/\1 bookworm-backports/' "$f"
      return 0
    fi
  done
  if [ -f /etc/apt/sources.list ] && grep -qE '^deb [^ ]+ bookworm ' /etc/apt/sources.list; then
    grep -E '^deb [^ ]+ bookworm ' /etc/apt/sources.list | head -n1 \
      | sed -E 's/ bookworm / bookworm-backports /' >> /etc/apt/sources.list
    return 0
  fi
  echo "setup: cannot find a bookworm apt source to extend with bookworm-backports" >&2
  return 1
}

if [ ${#need_apt[@]} -gt 0 ] || ! qemu_ok; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: run as root to install: ${need_apt[*]} qemu-system-arm>=8.0 (see README)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  qemu_ok || enable_backports
  apt-get update -qq
  [ ${#need_apt[@]} -gt 0 ] && apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  qemu_ok || apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-arm
  qemu_ok || { echo "setup: qemu-system-arm >= 8.0 is required" >&2; exit 1; }
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev,fleet]'
  touch .venv/.installed
fi
# The QEMU recorder plugin (--backend qemu-plugin), built once per version of its source.
.venv/bin/python -m irqmon.backends.qemu_plugin.build >/dev/null
