#!/usr/bin/env bash
# bench/refuse.sh (issue 3): requests refused per second, rampart against
# nginx, same machine, one run.
#
#  1. Limit: one address (127.0.0.1) floods a page with wrk (1 thread,
#     64 keep-alive connections, SECS seconds). rampart runs its built-in
#     rules with escalation off (bench/rampart-refuse.yaml: 10/s, burst 50
#     per address, 429); nginx runs limit_req with the same rate and burst,
#     answered 429 (bench/nginx-refuse.conf). Refused/s = 429 answers over
#     the run.
#  2. Drop at accept: a network (127.0.77.0/24) is blocked, in rampart
#     through the admin API (POST /api/v1/blocks), in nginx with deny.
#     bench/loadgen connect opens connections from 32 addresses of that
#     network, sends a GET on each and reads: rampart closes them at accept
#     without an answer; nginx reads the request and answers 403.
#     Refused/s = dropped (rampart) or 403 (nginx) connections per second.
#  3. SYN filter (rampart's default, lists.syn_filter): the same network
#     blocked in a second rampart whose listener drops the network's SYNs
#     in the kernel. The connection attempts get no answer at all, so the
#     load generator (SYN_WORKERS workers, each attempt given up after
#     SYN_TIMEOUT) sets the rate; what is compared is the CPU each refusal
#     costs the proxy: rampart's for a dropped SYN against nginx's for a
#     403 from row 2, as refusals per CPU-second. /proc counts CPU in clock
#     ticks (10 ms), so a proxy that spent nothing is reported at that
#     resolution, as an upper bound. The kernel's work on each SYN (the
#     filter, here on loopback in the sender's context) is not the
#     proxy's and is not counted for either system.
#
# The proxies' CPU time during each measurement is read from /proc, to give
# the CPU cost per refusal beside the rates (the load generator shares the
# two cores). ROUNDS interleaved rounds, medians, ratios. Writes section
# "refuse" of docs/benchmarks.md unless WRITE_DOC=0.
# Usage: bash bench/refuse.sh   (environment: ROUNDS SECS CONNS WORKERS
# WRITE_DOC KEEP_TMP)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
CONNS=${CONNS:-64}
WORKERS=${WORKERS:-32}
SYN_WORKERS=${SYN_WORKERS:-256}
SYN_TIMEOUT=${SYN_TIMEOUT:-50ms}
WRITE_DOC=${WRITE_DOC:-1}
BLOCKED=127.0.77.0/24
SOURCES=127.0.77.1-127.0.77.32

bench_init refuse
machine=$(machine_line)
log "machine: $machine"

www="$TMP/www"
mkdir -p "$www"
write_page "$www/page.html" 1024
cp "$www/page.html" "$www/cached.html"
chmod -R a+rX "$www"

free_port origin_port
free_port limit_port
free_port deny_port
free_port rampart_port
free_port admin_port
free_port syn_port
free_port syn_admin_port

nginx_start origin "$BENCH_DIR/nginx-origin.conf" "HOST=$HOST" "PORT=$origin_port" "ROOT=$www"
wait_port "$origin_port" "$LAST_PID"
nginx_start nginx "$BENCH_DIR/nginx-refuse.conf" "HOST=$HOST" "LIMIT_PORT=$limit_port" "DENY_PORT=$deny_port" \
  "ORIGIN=$HOST:$origin_port" "DENY_CIDR=$BLOCKED"
nginx_pid=$LAST_PID
wait_port "$limit_port" "$nginx_pid"
wait_port "$deny_port" "$nginx_pid"
rampart_start rampart "$rampart_port" "$admin_port" "http://$HOST:$origin_port" --config "$BENCH_DIR/rampart-refuse.yaml"
rampart_pid=$LAST_PID
wait_port "$rampart_port" "$rampart_pid"
wait_port "$admin_port" "$rampart_pid"
sed 's/^  syn_filter: false$/  syn_filter: true/' "$BENCH_DIR/rampart-refuse.yaml" >"$TMP/rampart-refuse-syn.yaml"
grep -q '^  syn_filter: true$' "$TMP/rampart-refuse-syn.yaml" || die "could not turn the SYN filter on in a copy of rampart-refuse.yaml"
rampart_start rampart-syn "$syn_port" "$syn_admin_port" "http://$HOST:$origin_port" --config "$TMP/rampart-refuse-syn.yaml"
syn_pid=$LAST_PID
wait_port "$syn_port" "$syn_pid"
wait_port "$syn_admin_port" "$syn_pid"

curl -fsS -X POST -H 'Content-Type: application/json' \
  -d "{\"cidr\": \"$BLOCKED\", \"ttl\": \"1h\", \"reason\": \"bench\"}" \
  "http://$HOST:$admin_port/api/v1/blocks" >/dev/null || die "could not block $BLOCKED through the admin API"
curl -fsS -X POST -H 'Content-Type: application/json' \
  -d "{\"cidr\": \"$BLOCKED\", \"ttl\": \"1h\", \"reason\": \"bench\"}" \
  "http://$HOST:$syn_admin_port/api/v1/blocks" >/dev/null || die "could not block $BLOCKED through the admin API"
log "blocked $BLOCKED in both rampart instances"

# Both must refuse as configured before anything is timed.
for u in "http://$HOST:$rampart_port/page.html" "http://$HOST:$limit_port/page.html"; do
  line=$("$BIN/loadgen" http --url "$u" --conns 4 --count 200 --duration 20s)
  [ "$(kv status_429 "$line")" -gt 0 ] 2>/dev/null || die "$u refused nothing with 429: $line"
done
line=$("$BIN/loadgen" connect --addr "$HOST:$rampart_port" --sources "$SOURCES" --workers 4 --count 100 --duration 20s)
[ "$(kv dropped "$line")" -ge 95 ] || die "rampart did not drop the blocked network at accept: $line"
line=$("$BIN/loadgen" connect --addr "$HOST:$deny_port" --sources "$SOURCES" --workers 4 --count 100 --duration 20s)
[ "$(kv status_403 "$line")" -ge 95 ] || die "nginx did not answer the denied network 403: $line"
line=$("$BIN/loadgen" connect --addr "$HOST:$syn_port" --sources "$SOURCES" --workers 4 --count 100 --timeout "$SYN_TIMEOUT" --duration 20s)
[ "$(kv timeouts "$line")" -ge 95 ] || die "rampart's SYN filter did not leave the blocked network unanswered: $line"
line=$("$BIN/loadgen" connect --addr "$HOST:$syn_port" --sources 127.0.78.1 --workers 1 --count 5 --duration 20s)
[ "$(kv answered "$line")" -ge 5 ] || die "rampart with the SYN filter did not answer an address outside the blocked network: $line"

cpu() { kv cpu_s "$("$BIN/loadgen" proc --pid "$1")"; }

# wrk_refused URL PID: 429s per second over a wrk run, and the CPU seconds
# PID (and its children) used per 1000 of them.
wrk_refused() {
  local url=$1 pid=$2 out c0 c1 n
  check_loopback_url "$url"
  c0=$(cpu "$pid")
  out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" "$url" 2>&1) || die "wrk failed: $out"
  c1=$(cpu "$pid")
  n=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
  n=${n:-0}
  awk -v n="$n" -v s="$SECS" -v c0="$c0" -v c1="$c1" 'BEGIN {printf "%.1f %.3f\n", n / s, (n > 0 ? (c1 - c0) * 1000 / n * 1000 : 0)}'
}

# connect_refused ADDR PID KEY: KEY (dropped_per_s, or status_403 over the
# duration) per second, and CPU ms per 1000.
connect_refused() {
  local addr=$1 pid=$2 key=$3 line c0 c1 n d
  shift 3
  c0=$(cpu "$pid")
  line=$("$BIN/loadgen" connect --addr "$addr" --sources "$SOURCES" --duration "${SECS}s" "$@")
  c1=$(cpu "$pid")
  n=$(kv "$key" "$line")
  d=$(kv duration_s "$line")
  log "connect $addr: $line"
  awk -v n="${n:-0}" -v s="$d" -v c0="$c0" -v c1="$c1" 'BEGIN {printf "%.1f %.3f\n", n / s, (n > 0 ? (c1 - c0) * 1000 / n * 1000 : 0)}'
}

declare -a lim_r=() lim_n=() drop_r=() deny_n=() lim_r_cpu=() lim_n_cpu=() drop_r_cpu=() deny_n_cpu=() syn_r=() syn_r_cpu=()
for ((round = 1; round <= ROUNDS; round++)); do
  res=$(wrk_refused "http://$HOST:$rampart_port/page.html" "$rampart_pid")
  read -r v c <<<"$res"
  lim_r+=("$v"); lim_r_cpu+=("$c")
  res=$(wrk_refused "http://$HOST:$limit_port/page.html" "$nginx_pid")
  read -r v c <<<"$res"
  lim_n+=("$v"); lim_n_cpu+=("$c")
  res=$(connect_refused "$HOST:$rampart_port" "$rampart_pid" dropped --workers "$WORKERS")
  read -r v c <<<"$res"
  drop_r+=("$v"); drop_r_cpu+=("$c")
  res=$(connect_refused "$HOST:$deny_port" "$nginx_pid" status_403 --workers "$WORKERS")
  read -r v c <<<"$res"
  deny_n+=("$v"); deny_n_cpu+=("$c")
  res=$(connect_refused "$HOST:$syn_port" "$syn_pid" timeouts --workers "$SYN_WORKERS" --timeout "$SYN_TIMEOUT")
  read -r v c <<<"$res"
  syn_r+=("$v"); syn_r_cpu+=("$c")
  log "round $round: 429/s rampart ${lim_r[-1]} nginx ${lim_n[-1]}; refused at accept/s rampart ${drop_r[-1]}, nginx deny 403/s ${deny_n[-1]}"
done

m_lim_r=$(median "${lim_r[@]}"); m_lim_n=$(median "${lim_n[@]}")
m_drop_r=$(median "${drop_r[@]}"); m_deny_n=$(median "${deny_n[@]}")
c_lim_r=$(median "${lim_r_cpu[@]}"); c_lim_n=$(median "${lim_n_cpu[@]}")
c_drop_r=$(median "${drop_r_cpu[@]}"); c_deny_n=$(median "${deny_n_cpu[@]}")
m_syn_r=$(median "${syn_r[@]}"); c_syn_r=$(median "${syn_r_cpu[@]}")
# CPU per 1000 at /proc's resolution (one 10 ms tick over the median
# round's attempts) when the proxy spent nothing measurable.
syn_floor=$(awk -v n="$m_syn_r" -v s="$SECS" 'BEGIN {printf "%.3f", (n > 0 ? 10 / (n * s) * 1000 : 0)}')
syn_cpu=$(awk -v c="$c_syn_r" -v f="$syn_floor" 'BEGIN {printf "%.3f", (c > f ? c : f)}')
syn_le=$(awk -v c="$c_syn_r" -v f="$syn_floor" 'BEGIN {print (c > f ? "" : "<= ")}')
per_cpu() { awk -v c="$1" 'BEGIN {printf "%.0f", (c > 0 ? 1000 * 1000 / c : 0)}'; }
syn_ratio=$(awk -v r="$syn_cpu" -v n="$c_deny_n" 'BEGIN {printf "%.0f", (r > 0 ? n / r : 0)}')

table="$TMP/refuse.md"
{
  echo "Measured $machine."
  echo
  echo "One flooding address, $ROUNDS interleaved rounds of ${SECS}s, medians. \"CPU ms per 1000\" is the proxy's own CPU time (all its processes, from /proc) per thousand refusals: the load generator shares the two cores, so the rate alone undersells the cheaper refusal."
  echo
  echo "| refusal | rampart /s | nginx /s | rampart / nginx | rampart CPU ms per 1000 | nginx CPU ms per 1000 | rounds (rampart; nginx) |"
  echo "|---|---:|---:|---:|---:|---:|---|"
  echo "| 429 per address (rampart built-in rule, escalation off, mode pinned; nginx limit_req 10r/s burst 50), wrk -t1 -c$CONNS keep-alive | $(fmt0 "$m_lim_r") | $(fmt0 "$m_lim_n") | **$(ratio "$m_lim_r" "$m_lim_n")** | $c_lim_r | $c_lim_n | $(printf '%s ' "${lim_r[@]}" | xargs); $(printf '%s ' "${lim_n[@]}" | xargs) |"
  echo "| blocked network (rampart: closed at accept; nginx: deny, 403 after reading the request), loadgen connect, $WORKERS workers from 32 addresses | $(fmt0 "$m_drop_r") | $(fmt0 "$m_deny_n") | **$(ratio "$m_drop_r" "$m_deny_n")** | $c_drop_r | $c_deny_n | $(printf '%s ' "${drop_r[@]}" | xargs); $(printf '%s ' "${deny_n[@]}" | xargs) |"
  echo "| blocked network, kernel SYN filter (rampart's default: no SYN-ACK; nginx: deny as above), loadgen connect, $SYN_WORKERS workers, attempts given up after $SYN_TIMEOUT | $(fmt0 "$m_syn_r") (sender-bound) | $(fmt0 "$m_deny_n") | see below | ${syn_le}$syn_cpu | $c_deny_n | $(printf '%s ' "${syn_r[@]}" | xargs); (row 2) |"
  echo
  echo "Refusals per CPU-second of the proxy (1000 / CPU ms per 1000): rampart closing at accept $(per_cpu "$c_drop_r"), rampart's SYN filter ${syn_le:+at least }$(per_cpu "$syn_cpu"), nginx deny $(per_cpu "$c_deny_n")."
  echo
  echo "Goal: drops at accept at least 2x nginx. Closed at accept (SYN filter off): rate ratio $(ratio "$m_drop_r" "$m_deny_n"), $(awk -v r="$(ratio "$m_drop_r" "$m_deny_n")" 'BEGIN {print (r >= 2 ? "met" : "not met")}'). SYN filter (the default): ${syn_le:+at least }${syn_ratio}x nginx's refusals per CPU-second, $(awk -v r="$syn_ratio" 'BEGIN {print (r >= 2 ? "met" : "not met")}')."
} >"$table"
cat "$table"
if [ "$WRITE_DOC" = 1 ]; then replace_section refuse "$table"; fi
