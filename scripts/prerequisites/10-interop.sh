#!/usr/bin/env bash
# Interop test prerequisites (test/interop): OpenDKIM (a milter nobody here wrote, driven by the
# milterkit client), opendkim-genkey (test keys) and OpenDKIM's Lua-scripted `miltertest` (an MTA
# emulator, driving a milterkit milter). The tests run private instances only: the packaged
# opendkim service is never configured nor used, and is stopped if the package started it.
# Idempotent: a rerun with everything in place does no network access.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(opendkim opendkim-tools miltertest)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ -z "$(ls /var/lib/apt/lists/*_Packages 2>/dev/null)" ]; then
    apt-get update -qq
  fi
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    { apt-get update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
  # Without systemd the maintainer script may start the system daemon; the tests never use it.
  if [ -x /etc/init.d/opendkim ] && /etc/init.d/opendkim status >/dev/null 2>&1; then
    /etc/init.d/opendkim stop >/dev/null 2>&1 || true
  fi
fi

for tool in opendkim opendkim-genkey miltertest; do
  command -v "$tool" >/dev/null || { echo "interop: $tool is missing after installation" >&2; exit 1; }
done
echo "interop: $(opendkim -V 2>&1 | head -n1)"
