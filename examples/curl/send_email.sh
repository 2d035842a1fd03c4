#!/usr/bin/env bash
# Send a mail with nothing but curl and openssl: the Tencent Cloud API 3.0 signature (TC3-HMAC-SHA256) done by
# hand, as any language without an SDK would do it.
#
#   MAILPUSH_ENDPOINT=127.0.0.1:8080 SECRET_ID=… SECRET_KEY=… MAIL_FROM=noreply@your.domain MAIL_TO=you@example.com \
#       examples/curl/send_email.sh
#
# Prints mailpush's JSON answer ({"Response":{"MessageId":…,"RequestId":…}}).
set -euo pipefail

endpoint="${MAILPUSH_ENDPOINT:-127.0.0.1:8080}"
action="SendEmail"
version="2020-10-02"
service="ses"
timestamp="$(date +%s)"
date="$(date -u -d "@$timestamp" +%Y-%m-%d)"
text_b64="$(printf 'Your first mail through mailpush, sent with curl.' | base64 -w0)"
payload="$(printf '{"FromEmailAddress":"%s","Destination":["%s"],"Subject":"Hello from curl","Simple":{"Text":"%s"}}' \
  "$MAIL_FROM" "$MAIL_TO" "$text_b64")"

sha256_hex() { printf '%s' "$1" | openssl dgst -sha256 -hex | sed 's/^.* //'; }
# HMAC-SHA256 of $2 under the hex key $1, as hex.
hmac_hex() { printf '%s' "$2" | openssl dgst -sha256 -hex -mac HMAC -macopt "hexkey:$1" | sed 's/^.* //'; }

# 1. The canonical request: method, path, query, the signed headers, the payload's hash.
content_type="application/json; charset=utf-8"
canonical_request="POST
/

content-type:${content_type}
host:${endpoint}

content-type;host
$(sha256_hex "$payload")"
# 2. The string to sign names the algorithm, the time and the credential scope.
scope="${date}/${service}/tc3_request"
string_to_sign="TC3-HMAC-SHA256
${timestamp}
${scope}
$(sha256_hex "$canonical_request")"
# 3. The signing key is derived from the secret key, the date and the service.
secret_date="$(hmac_hex "$(printf 'TC3%s' "$SECRET_KEY" | od -An -v -tx1 | tr -d ' \n')" "$date")"
secret_service="$(hmac_hex "$secret_date" "$service")"
secret_signing="$(hmac_hex "$secret_service" "tc3_request")"
signature="$(hmac_hex "$secret_signing" "$string_to_sign")"

curl --silent --show-error --fail-with-body "http://${endpoint}/" \
  -H "Authorization: TC3-HMAC-SHA256 Credential=${SECRET_ID}/${scope}, SignedHeaders=content-type;host, Signature=${signature}" \
  -H "Content-Type: ${content_type}" \
  -H "Host: ${endpoint}" \
  -H "X-TC-Action: ${action}" \
  -H "X-TC-Version: ${version}" \
  -H "X-TC-Timestamp: ${timestamp}" \
  -H "X-TC-Region: ap-guangzhou" \
  -d "$payload"
echo
