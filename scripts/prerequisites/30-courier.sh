#!/usr/bin/env bash
# Courier end-to-end test prerequisites: a Debian 12 chroot with Debian's courier-mta, because
# courier-mta conflicts with every other MTA the host may carry (Postfix, Sendmail).
# The chroot is built once (about 2 minutes) and reused from a fixed place; the configuration step
# below is idempotent and runs every time, so a changed setting reaches a cached chroot.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

CHROOT=${MILTERKIT_COURIER_CHROOT:-/var/cache/milterkit/courier-chroot}
BASE_STAMP="$CHROOT/.milterkit-base-v1"
SMTP_PORT=${MILTERKIT_COURIER_SMTP_PORT:-2625}
REPO=$(cd "$(dirname "$0")/../.." && pwd)

if ! command -v debootstrap >/dev/null; then
  # Refresh the package lists only when the install cannot be done with the ones present.
  apt-get install -y -qq debootstrap >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
fi

if [ ! -e "$BASE_STAMP" ]; then
  echo "courier: building the Debian 12 chroot in $CHROOT (once; reused afterwards)"
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  building="$CHROOT.building"
  if mountpoint -q "$building/proc" 2>/dev/null; then umount "$building/proc"; fi
  rm -rf "$building"
  mkdir -p "$(dirname "$CHROOT")"
  debootstrap --variant=minbase bookworm "$building" "$mirror" >/dev/null
  # No daemon autostart from maintainer scripts.
  printf '#!/bin/sh\nexit 101\n' >"$building/usr/sbin/policy-rc.d"
  chmod +x "$building/usr/sbin/policy-rc.d"
  # The chroot's own /dev nodes, so that its /dev/log never lands on the host.
  (cd "$building/dev" && rm -f null zero random urandom tty &&
    mknod -m 666 null c 1 3 && mknod -m 666 zero c 1 5 && mknod -m 666 random c 1 8 &&
    mknod -m 666 urandom c 1 9 && mknod -m 666 tty c 5 0)
  mount -t proc proc "$building/proc"
  trap 'umount "$building/proc" 2>/dev/null || true' EXIT
  # Quiet unless it fails (the postinst prints a whole certificate).
  chroot "$building" sh -c 'apt-get update -qq && \
    apt-get install -y -qq --no-install-recommends courier-mta python3' >"$building/.install.log" 2>&1 ||
    { tail -50 "$building/.install.log"; exit 1; }
  umount "$building/proc"
  trap - EXIT
  rm -rf "$CHROOT"
  mv "$building" "$CHROOT"
  touch "$BASE_STAMP"
fi

# --- configuration (idempotent) ---
C=$CHROOT
echo mail.test.example >"$C/etc/courier/me"
printf 'localhost\nmail.test.example\n' >"$C/etc/courier/locals"
echo test.example >"$C/etc/courier/defaultdomain"
echo mail.test.example >"$C/etc/courier/esmtpacceptmailfor.dir/test"
echo hosted.example >"$C/etc/courier/hosteddomains/milterkit"
sed -i -e "s/^PORT=.*/PORT=$SMTP_PORT/" -e 's/^BOFHCHECKDNS=.*/BOFHCHECKDNS=0/' -e 's/^TARPIT=.*/TARPIT=0/' \
  -e 's/^ESMTPAUTH=.*/ESMTPAUTH="PLAIN LOGIN"/' "$C/etc/courier/esmtpd"
grep -q '^TCPDOPTS=.*-nodnslookup' "$C/etc/courier/esmtpd" ||
  sed -i -e 's/^TCPDOPTS="\(.*\)"/TCPDOPTS="\1 -nodnslookup"/' "$C/etc/courier/esmtpd"
grep -q '^ADDRESS=127.0.0.1$' "$C/etc/courier/esmtpd" || echo 'ADDRESS=127.0.0.1' >>"$C/etc/courier/esmtpd"
# Only global filters decide in these tests; no local mail filter.
rm -f "$C/etc/courier/filters/active/"*
mkdir -p "$C/run/courier/authdaemon"
chroot "$C" chown courier:courier /run/courier /run/courier/authdaemon
for user in alice carol archive; do
  if ! chroot "$C" id "$user" >/dev/null 2>&1; then
    chroot "$C" useradd -m -s /bin/sh "$user"
    chroot "$C" su - "$user" -c 'maildirmake.courier ~/Maildir'
  fi
done
echo 'alice:Secret123' | chroot "$C" chpasswd
# A domain-less alias that expands to a recipient already named: the duplicate case for noduplicates.
mkdir -p "$C/etc/courier/aliases"
printf 'team: alice@mail.test.example, carol@mail.test.example\n' >"$C/etc/courier/aliases/milterkit"
# The conformance cases (test/e2e/cases/chain-*.yaml) write to any address of example.com: a hosted
# domain without accounts, so every address falls through to the aliasdir's default instructions,
# which hand each recipient's copy to the e2e suite's delivery program (as Postfix and Sendmail do):
# one file per recipient in /var/mail/cases, its envelope beside it, as user courier. (Any other
# local address without an account, e.g. nobody@mail.test.example, now lands there too.)
echo example.com >"$C/etc/courier/hosteddomains/conformance"
install -m 0755 "$REPO/test/e2e/harness/deliver.sh" "$C/usr/local/lib/milterkit-deliver.sh"
echo '| /usr/local/lib/milterkit-deliver.sh /var/mail/cases "$SENDER" "$RECIPIENT"' >"$C/etc/courier/aliasdir/.courier-default"
chroot "$C" makeacceptmailfor >/dev/null
chroot "$C" makesmtpaccess >/dev/null
chroot "$C" makealiases >/dev/null
chroot "$C" makehosteddomains >/dev/null
echo "courier: chroot ready at $C (ESMTP on 127.0.0.1:$SMTP_PORT when started)"
