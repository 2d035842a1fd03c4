#!/usr/bin/env bash
# Side by side with Postfix: the same N mails (smtp-source, 20 sessions) pushed over SMTP into
#   (a) a PRIVATE Postfix instance relaying everything to one smtp-sink, and
#   (b) mailpush (`mailpush serve` with loopback as a trusted SMTP network: fsync before 250, DKIM-signed with
#       ed25519, then with RSA-2048) delivering to the same smtp-sink through the testkit DNS override,
# and prints each end-to-end rate (smtp-source start → last mail counted by the sink) and the ratio, for each
# workload: 2 KB with connections reused (`smtp-source -d`), 2 KB with a new connection per mail (how most
# application SMTP libraries send) and 100 KB with a new connection per mail.
#
# Usage: benches/postfix_compare.sh [N=20000] [RUNS=3]
#   BIN_DIR   directory with release builds of mailpush and mailpush-bench (default target/release; build them
#             with `cargo build --release -p mailpush-bin -p mailpush-bench`)
#   SESSIONS  smtp-source sessions (default 20)
#   WORKLOADS space-separated SIZE:reuse|new pairs (default "2048:reuse 2048:new 102400:new")
#   PREVIOUS_BIN_DIR  release builds of an earlier version: each mailpush run is followed by the same run of
#             that build, and the medians add the ratio of this build to it (alternating runs, one machine)
# Needs root (Postfix instance, apt-get). Installs postfix non-interactively when missing. Leaves nothing
# running: the Postfix instance is stopped and its directories removed on exit.
set -euo pipefail

N=${1:-20000}
RUNS=${2:-3}
SESSIONS=${SESSIONS:-20}
WORKLOADS=${WORKLOADS:-"2048:reuse 2048:new 102400:new"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN_DIR=${BIN_DIR:-$ROOT/target/release}
WORK=${WORK:-/tmp/mailpush-postfix-compare}
SINK_PORT=${SINK_PORT:-10025}
PF_PORT=${PF_PORT:-10026}
CONF=$WORK/postfix-etc
SENDER=bench@bench.example.com
RCPT=rcpt@example.org

PREVIOUS_BIN_DIR=${PREVIOUS_BIN_DIR:-}
for dir in "$BIN_DIR" ${PREVIOUS_BIN_DIR:+"$PREVIOUS_BIN_DIR"}; do
  for b in mailpush mailpush-bench; do
    [[ -x $dir/$b ]] || { echo "missing $dir/$b: cargo build --release -p mailpush-bin -p mailpush-bench" >&2; exit 1; }
  done
done
if ! command -v smtp-source >/dev/null || ! command -v postconf >/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y postfix
fi

SINK_PID=""
BENCH_PID=""
cleanup() {
  set +e
  if [[ -n $BENCH_PID ]]; then exec 7>&-; wait "$BENCH_PID"; fi
  postfix -c "$CONF" stop >/dev/null 2>&1
  [[ -n $SINK_PID ]] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null
  postconf -X alternate_config_directories >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

rm -rf "$WORK"
mkdir -p "$WORK" "$CONF" "$WORK/spool" "$WORK/lib" "$WORK/log"
chown postfix "$WORK/lib"

# ---------------------------------------------------------------- the sink (shared by both)
smtp-sink -c -u nobody "127.0.0.1:$SINK_PORT" 2000 >"$WORK/sink.out" 2>&1 &
SINK_PID=$!
sleep 0.5
sink_count() { # the last "mesg=N" of smtp-sink's running counters (only the file's tail: it grows by a
  # counter line per message, and parsing all of it every 50 ms would cost the run being measured CPU)
  tail -c 256 "$WORK/sink.out" | tr '\r' '\n' | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1 | sed 's/^$/0/'
}

# ---------------------------------------------------------------- the private Postfix instance
cp /etc/postfix/master.cf "$CONF/master.cf"
cat >"$CONF/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $WORK/spool
data_directory = $WORK/lib
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-bench.localdomain
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:$SINK_PORT
smtp_tls_security_level = none
smtpd_tls_security_level = none
alias_maps =
alias_database =
local_recipient_maps =
biff = no
maillog_file = $WORK/log/postfix.log
maillog_file_prefixes = /var, /dev/stdout, $WORK
default_destination_concurrency_limit = 20
EOF
# Listen on our own port, no chroot (the spool is outside /var/spool/postfix).
sed -i "s/^smtp      inet  n       -       y       -       -       smtpd/127.0.0.1:$PF_PORT inet n - n - - smtpd/" "$CONF/master.cf"
postconf -c "$CONF" -F '*/*/chroot = n' >/dev/null
# The default instance must list the private one.
postconf -e "alternate_config_directories = $CONF"
postfix -c "$CONF" check
postfix -c "$CONF" start
sleep 1

wait_for() { # wait until the sink counted $1 messages; print the elapsed seconds since $2 (ns)
  local want=$1 t0=$2
  local deadline=$((SECONDS + 900))
  while (($(sink_count) < want)); do
    ((SECONDS < deadline)) || { echo "timeout: sink has $(sink_count) of $want" >&2; return 1; }
    sleep 0.05
  done
  echo "scale=3; ($(date +%s%N) - $t0) / 1000000000" | bc
}

cpu_idle_pct() { # percentage of CPU time idle over the next half second (all cores, /proc/stat)
  local a b
  read -r -a a < <(head -1 /proc/stat)
  sleep 0.5
  read -r -a b < <(head -1 /proc/stat)
  local total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  echo $(((100 * (b[4] - a[4] + b[5] - a[5])) / (total > 0 ? total : 1)))
}

settle() { # wait (at most 30 s) until the machine is ≥ 90 % idle: the previous run's leftover work (Postfix's
  # queue manager and cleanup, a server still shutting down) must not be charged to the next one
  local deadline=$((SECONDS + 30))
  while (($(cpu_idle_pct) < 90)) && ((SECONDS < deadline)); do :; done
}

push() { # push N mails into $1 (host:port), $2 bytes each, $3 = reuse | new connections; print the seconds
  local target=$1 size=$2 reuse=() before t0
  [[ $3 == reuse ]] && reuse=(-d)
  settle
  before=$(sink_count)
  t0=$(date +%s%N)
  smtp-source -s "$SESSIONS" "${reuse[@]}" -l "$size" -m "$N" -f "$SENDER" -t "$RCPT" "$target"
  wait_for $((before + N)) "$t0"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

start_mailpush() { # $1 = dkim (ed25519 | rsa2048), $2 = build directory (default BIN_DIR); sets MP_SMTP. It runs
  # until its stdin (fd 7) closes.
  local dir=${2:-$BIN_DIR}
  rm -f "$WORK/mp.in"
  mkfifo "$WORK/mp.in"
  "$dir/mailpush-bench" --bin-dir "$dir" serve --mx-port "$SINK_PORT" --dkim "$1" \
    <"$WORK/mp.in" >"$WORK/mp.out" 2>>"$WORK/mp.err" &
  BENCH_PID=$!
  exec 7>"$WORK/mp.in"
  until grep -q '^READY' "$WORK/mp.out" 2>/dev/null; do
    kill -0 "$BENCH_PID" 2>/dev/null || { cat "$WORK/mp.err" >&2; echo "mailpush-bench serve died" >&2; exit 1; }
    sleep 0.1
  done
  MP_SMTP=$(sed -n 's/^SMTP_ADDR=//p' "$WORK/mp.out")
}

stop_mailpush() {
  exec 7>&-
  wait "$BENCH_PID" || true
  BENCH_PID=""
  tail -1 "$WORK/mp.err" # server CPU seconds and peak RSS
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "N=$N mails per run, $SESSIONS smtp-source sessions, workloads (bytes:connections): $WORKLOADS; $RUNS runs each"

declare -A RESULTS
for run in $(seq 1 "$RUNS"); do
  for w in $WORKLOADS; do
    size=${w%%:*} conn=${w#*:}
    s=$(push "127.0.0.1:$PF_PORT" "$size" "$conn")
    RESULTS[$w/postfix]+="$(echo "scale=1; $N / $s" | bc) "
    echo "run $run $w postfix: ${s}s = $(echo "scale=1; $N / $s" | bc)/s (load $(cut -d' ' -f1 /proc/loadavg))"
    for dkim in ed25519 rsa2048; do
      start_mailpush "$dkim"
      s=$(push "$MP_SMTP" "$size" "$conn")
      stop_mailpush
      RESULTS[$w/$dkim]+="$(echo "scale=1; $N / $s" | bc) "
      echo "run $run $w mailpush ($dkim): ${s}s = $(echo "scale=1; $N / $s" | bc)/s (load $(cut -d' ' -f1 /proc/loadavg))"
      if [[ -n $PREVIOUS_BIN_DIR ]]; then
        start_mailpush "$dkim" "$PREVIOUS_BIN_DIR"
        s=$(push "$MP_SMTP" "$size" "$conn")
        stop_mailpush
        RESULTS[$w/$dkim/previous]+="$(echo "scale=1; $N / $s" | bc) "
        echo "run $run $w previous build ($dkim): ${s}s = $(echo "scale=1; $N / $s" | bc)/s"
      fi
    done
  done
done

echo
echo "medians (end-to-end mails/s):"
for w in $WORKLOADS; do
  pf=$(echo "${RESULTS[$w/postfix]}" | tr ' ' '\n' | grep . | median)
  echo "  $w postfix relay            $pf"
  for dkim in ed25519 rsa2048; do
    mp=$(echo "${RESULTS[$w/$dkim]}" | tr ' ' '\n' | grep . | median)
    echo "  $w mailpush DKIM $dkim   $mp   ratio $(echo "scale=2; $mp / $pf" | bc)x"
    if [[ -n $PREVIOUS_BIN_DIR ]]; then
      prev=$(echo "${RESULTS[$w/$dkim/previous]}" | tr ' ' '\n' | grep . | median)
      echo "  $w previous build DKIM $dkim   $prev   this build / previous $(echo "scale=3; $mp / $prev" | bc)"
    fi
  done
done
