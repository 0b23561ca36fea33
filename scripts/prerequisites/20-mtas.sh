#!/usr/bin/env bash
# Installs the two MTAs of the end-to-end suite (test/e2e) from Debian 12's packages:
# - Postfix as an ordinary package ("No configuration": the system instance is never configured
#   nor started; the suite runs its own instance with `postfix -c DIR`).
# - Sendmail unpacked (dpkg -x) into a private directory, because sendmail-bin conflicts with
#   postfix. Only its runtime libraries and m4 are installed system-wide.
# - SMTP AUTH for both (Cyrus SASL with a sasldb, no daemon): the PLAIN/LOGIN mechanisms and the
#   sasldb plugin system-wide, and saslpasswd2 unpacked from sasl2-bin into a private directory
#   (installing sasl2-bin would also install and start saslauthd, which nothing here uses).
# Idempotent: a rerun with everything in place does no network access.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

SENDMAIL_ROOT=${MILTERKIT_SENDMAIL_ROOT:-/var/cache/milterkit/sendmail}
SENDMAIL_PACKAGES=(sendmail-bin sendmail-base sendmail-cf)
SASL_TOOLS_ROOT=${MILTERKIT_SASL_TOOLS_ROOT:-/var/cache/milterkit/sasl2-bin}
SYSTEM_PACKAGES=(postfix m4 util-linux libdb5.3 libldap-2.5-0 liblockfile1 libnsl2 libsasl2-2 libssl3 libwrap0
  libsasl2-modules libsasl2-modules-db)

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

# Unpacks Debian packages into a private directory (replacing it whole, so a half-done unpack is
# never used).
unpack_packages() {
  local target=$1
  shift
  apt_update_once
  local download_dir
  download_dir=$(mktemp -d)
  (cd "$download_dir" && apt-get download -qq "$@")
  rm -rf "$target.new"
  mkdir -p "$target.new"
  for deb in "$download_dir"/*.deb; do
    dpkg -x "$deb" "$target.new"
  done
  rm -rf "$download_dir" "$target"
  mv "$target.new" "$target"
}

if [ ! -x "$SENDMAIL_ROOT/usr/libexec/sendmail/sendmail" ] || [ ! -f "$SENDMAIL_ROOT/usr/share/sendmail/cf/m4/cf.m4" ]; then
  unpack_packages "$SENDMAIL_ROOT" "${SENDMAIL_PACKAGES[@]}"
fi
if [ ! -x "$SASL_TOOLS_ROOT/usr/sbin/saslpasswd2" ]; then
  unpack_packages "$SASL_TOOLS_ROOT" sasl2-bin
fi
# The PLAIN mechanism and the sasldb plugin are what both MTAs authenticate with.
for plugin in libplain.so libsasldb.so; do
  if ! ls /usr/lib/*/sasl2/"$plugin" >/dev/null 2>&1; then
    echo "Cyrus SASL plugin $plugin is missing" >&2
    exit 1
  fi
done

# Sendmail waits a minute when the host name has no dot; the suite runs it in a UTS namespace with
# a dotted name, and so does this check (which also proves that unshare works here).
sendmail_version=$(unshare --uts sh -c 'hostname mta.e2e.test && exec "$0" -d0.1 -bt' \
  "$SENDMAIL_ROOT/usr/libexec/sendmail/sendmail" </dev/null 2>/dev/null || true)
case "$sendmail_version" in
  Version\ 8.17*) echo "sendmail ${sendmail_version%%$'\n'*} in $SENDMAIL_ROOT" ;;
  *) echo "sendmail in $SENDMAIL_ROOT does not run" >&2; exit 1 ;;
esac
echo "postfix $(postconf -dh mail_version)"
echo "saslpasswd2 in $SASL_TOOLS_ROOT"
