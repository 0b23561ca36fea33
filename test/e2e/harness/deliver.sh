#!/bin/sh
# Delivery agent of the e2e suite, run by Postfix (pipe) and Sendmail (mailer) once per recipient:
#   deliver.sh MAILDIR SENDER RECIPIENT
# Stores the message as it arrives on stdin in MAILDIR/new/ID and the envelope in MAILDIR/envelope/ID
# (one line each: sender, recipient), Maildir-style: written in tmp/, then renamed.
set -eu
maildir=$1
id="$(date +%s%N).$$"
cat > "$maildir/tmp/$id"
printf '%s\n%s\n' "$2" "$3" > "$maildir/envelope/$id"
mv "$maildir/tmp/$id" "$maildir/new/$id"
