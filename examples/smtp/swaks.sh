#!/usr/bin/env bash
# Submit a mail over SMTP with swaks: STARTTLS, then AUTH with a sender address and its SMTP password (set with
# UpdateEmailSmtpPassWord, or `mailpush sender add … --smtp-password`).
#
#   SMTP_HOST=127.0.0.1 SMTP_PORT=587 SMTP_USER=noreply@your.domain SMTP_PASSWORD=… MAIL_TO=you@example.com \
#       examples/smtp/swaks.sh
#
# mailpush answers the DATA with `250 2.0.0 Ok: queued as <MessageId>`: the id GetSendEmailStatus knows.
set -euo pipefail
swaks --server "${SMTP_HOST:-127.0.0.1}" --port "${SMTP_PORT:-587}" --tls \
  --auth PLAIN --auth-user "$SMTP_USER" --auth-password "$SMTP_PASSWORD" \
  --from "$SMTP_USER" --to "$MAIL_TO" \
  --header "Subject: Hello from swaks" \
  --body "Your first mail through mailpush, submitted over SMTP."
