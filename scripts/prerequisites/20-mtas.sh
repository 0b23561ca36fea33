#!/usr/bin/env bash
# Installs the two MTAs of the end-to-end suite (test/e2e) from Debian 12's packages:
# - Postfix as an ordinary package ("No configuration": the system instance is never configured
#   nor started; the suite runs its own instance with `postfix -c DIR`).
# - Sendmail unpacked (dpkg -x) into a private directory, because sendmail-bin conflicts with
#   postfix. Only its runtime libraries and m4 are installed system-wide.
# Idempotent: a rerun with everything in place does no network access.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

SENDMAIL_ROOT=${MILTERKIT_SENDMAIL_ROOT:-/var/cache/milterkit/sendmail}
SENDMAIL_PACKAGES=(sendmail-bin sendmail-base sendmail-cf)
SYSTEM_PACKAGES=(postfix m4 util-linux libdb5.3 libldap-2.5-0 liblockfile1 libnsl2 libsasl2-2 libssl3 libwrap0)

apt_updated=no
apt_update_once() {
  if [ "$apt_updated" = no ]; then
    apt-get update -qq
    apt_updated=yes
  fi
}

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt_update_once
  if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'install ok installed'; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  fi
  # policy-rc.d-style guard is not needed: with "No configuration" there is no main.cf, so the
  # package's service does not start. The check below makes sure of it.
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The suite runs private instances only; a system Postfix master left running would not hurt the
# private ones (other ports, other queue) but nothing of ours should run outside the tests.
if [ -f /etc/postfix/main.cf ] && postfix status >/dev/null 2>&1; then
  echo "note: the system Postfix instance is running; the e2e suite does not use it"
fi

if [ ! -x "$SENDMAIL_ROOT/usr/libexec/sendmail/sendmail" ] || [ ! -f "$SENDMAIL_ROOT/usr/share/sendmail/cf/m4/cf.m4" ]; then
  apt_update_once
  download_dir=$(mktemp -d)
  trap 'rm -rf "$download_dir"' EXIT
  (cd "$download_dir" && apt-get download -qq "${SENDMAIL_PACKAGES[@]}")
  rm -rf "$SENDMAIL_ROOT.new"
  mkdir -p "$SENDMAIL_ROOT.new"
  for deb in "$download_dir"/*.deb; do
    dpkg -x "$deb" "$SENDMAIL_ROOT.new"
  done
  rm -rf "$SENDMAIL_ROOT"
  mv "$SENDMAIL_ROOT.new" "$SENDMAIL_ROOT"
fi

# Sendmail waits a minute when the host name has no dot; the suite runs it in a UTS namespace with
# a dotted name, and so does this check (which also proves that unshare works here).
sendmail_version=$(unshare --uts sh -c 'hostname mta.e2e.test && exec "$0" -d0.1 -bt' \
  "$SENDMAIL_ROOT/usr/libexec/sendmail/sendmail" </dev/null 2>/dev/null || true)
case "$sendmail_version" in
  Version\ 8.17*) echo "sendmail ${sendmail_version%%$'\n'*} in $SENDMAIL_ROOT" ;;
  *) echo "sendmail in $SENDMAIL_ROOT does not run" >&2; exit 1 ;;
esac
echo "postfix $(postconf -dh mail_version)"
