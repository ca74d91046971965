#!/usr/bin/env bash
# bench/proxy.sh (issue 2): proxy throughput, added latency and the soak.
#
#  1. Throughput: a 1 KiB keep-alive page that no cache may keep
#     (Cache-Control: no-store) from an nginx origin, measured with wrk
#     (1 thread, 64 connections, SECS seconds) direct to the origin, through
#     nginx as a reverse proxy (bench/nginx-proxy.conf) and through rampart
#     with the whole pipeline on and no rule firing
#     (bench/rampart-pipeline.yaml); ROUNDS interleaved rounds, medians and
#     the ratios rampart/nginx and rampart/direct.
#  2. Added latency at moderate load: bench/loadgen at a fixed rate (LAT_SHARE
#     of rampart's median throughput) for LAT_SECS, direct, through rampart
#     and through nginx; p50/p99 and p99(rampart) - p99(direct).
#  3. Soak: SOAK requests through rampart; go_goroutines and
#     process_resident_memory_bytes from its /metrics after WARM requests and
#     at the end.
#
# Writes the tables into docs/benchmarks.md (section "proxy") unless
# WRITE_DOC=0. Every process it starts is stopped on exit, even on failure.
# Usage: bash bench/proxy.sh   (environment: ROUNDS SECS CONNS LAT_SECS
# LAT_ROUNDS LAT_SHARE SOAK WARM WRITE_DOC KEEP_TMP)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
CONNS=${CONNS:-64}
LAT_SECS=${LAT_SECS:-10}
LAT_ROUNDS=${LAT_ROUNDS:-3}
LAT_SHARE=${LAT_SHARE:-0.2}
SOAK=${SOAK:-1000000}
WARM=${WARM:-100000}
WRITE_DOC=${WRITE_DOC:-1}

bench_init proxy
machine=$(machine_line)
log "machine: $machine"

www="$TMP/www"
mkdir -p "$www"
write_page "$www/page.html" 1024
cp "$www/page.html" "$www/cached.html"
chmod -R a+rX "$www"

free_port origin_port
free_port nginx_port
free_port rampart_port
free_port admin_port

nginx_start origin "$BENCH_DIR/nginx-origin.conf" "HOST=$HOST" "PORT=$origin_port" "ROOT=$www"
origin_pid=$LAST_PID
wait_port "$origin_port" "$origin_pid"
nginx_start proxy "$BENCH_DIR/nginx-proxy.conf" "HOST=$HOST" "PORT=$nginx_port" "ORIGIN=$HOST:$origin_port"
wait_port "$nginx_port" "$LAST_PID"
rampart_start rampart "$rampart_port" "$admin_port" "http://$HOST:$origin_port" --config "$BENCH_DIR/rampart-pipeline.yaml"
rampart_pid=$LAST_PID
wait_port "$rampart_port" "$rampart_pid"
wait_port "$admin_port" "$rampart_pid"

direct="http://$HOST:$origin_port/page.html"
via_nginx="http://$HOST:$nginx_port/page.html"
via_rampart="http://$HOST:$rampart_port/page.html"

# The page must come through every path whole, and rampart must proxy it,
# not serve it from its cache.
size=$(curl -fsS "$direct" | wc -c)
for u in "$via_nginx" "$via_rampart"; do
  got=$(curl -fsS "$u" | wc -c)
  [ "$got" = "$size" ] || die "$u returned $got bytes, the origin $size"
done
hdrs=$(curl -fsS -D - -o /dev/null "$via_rampart")
grep -qi '^cache-control: no-store' <<<"$hdrs" || die "rampart's answer lacks the origin's Cache-Control: no-store"
log "page: $size bytes, Cache-Control: no-store"

log "warming up each path for 2 s"
for u in "$direct" "$via_nginx" "$via_rampart"; do wrk_rps "$u" 2 "$CONNS" >/dev/null; done
hits_before=$(metric "$admin_port" rampart_upstream_requests_total)

declare -a r_direct=() r_nginx=() r_rampart=()
for ((round = 1; round <= ROUNDS; round++)); do
  r_direct+=("$(wrk_rps "$direct" "$SECS" "$CONNS")")
  r_nginx+=("$(wrk_rps "$via_nginx" "$SECS" "$CONNS")")
  r_rampart+=("$(wrk_rps "$via_rampart" "$SECS" "$CONNS")")
  log "round $round: direct ${r_direct[-1]}, nginx ${r_nginx[-1]}, rampart ${r_rampart[-1]} req/s"
done
m_direct=$(median "${r_direct[@]}")
m_nginx=$(median "${r_nginx[@]}")
m_rampart=$(median "${r_rampart[@]}")
hits_after=$(metric "$admin_port" rampart_upstream_requests_total)
cache_hits=$(curl -fsS "http://$HOST:$admin_port/metrics" | awk '/^rampart_cache_responses_total\{cache="HIT"\}/ {print $2}')
log "median req/s: direct $m_direct, nginx $m_nginx, rampart $m_rampart; rampart/nginx $(ratio "$m_rampart" "$m_nginx"), rampart/direct $(ratio "$m_rampart" "$m_direct")"
log "rampart forwarded $((hits_after - hits_before)) requests to the origin during the rounds; cache hits: ${cache_hits:-0}"

# Added latency at a fixed, moderate rate.
rate=$(awk -v r="$m_rampart" -v s="$LAT_SHARE" 'BEGIN {printf "%.0f", r * s}')
log "latency at $rate req/s ($LAT_SHARE of rampart's median), $LAT_ROUNDS x ${LAT_SECS}s per path"
declare -A lat
for ((round = 1; round <= LAT_ROUNDS; round++)); do
  for path in direct rampart nginx; do
    case $path in
      direct) u=$direct ;;
      rampart) u=$via_rampart ;;
      nginx) u=$via_nginx ;;
    esac
    line=$("$BIN/loadgen" http --url "$u" --rate "$rate" --conns "$CONNS" --duration "${LAT_SECS}s")
    lat[$path,p50]+=" $(kv p50_ms "$line")"
    lat[$path,p99]+=" $(kv p99_ms "$line")"
    lat[$path,p999]+=" $(kv p999_ms "$line")"
    lat[$path,err]+=" $(( $(kv errors "$line") + $(kv missed "$line") ))"
    log "latency $path round $round: $line"
  done
done
for path in direct rampart nginx; do
  for q in p50 p99 p999 err; do
    # shellcheck disable=SC2086
    lat[$path,$q,m]=$(median ${lat[$path,$q]})
  done
done
# The added latency is taken round by round (rampart's run follows the
# direct one within seconds, so a change in the machine's load hits both),
# then the median of those paired differences.
paired() { # paired QUANTILE: per-round rampart - direct, space-separated
  paste -d' ' <(tr ' ' '\n' <<<"${lat[rampart,$1]# }") <(tr ' ' '\n' <<<"${lat[direct,$1]# }") |
    awk 'NF == 2 {printf "%s%.3f", (NR > 1 ? " " : ""), $1 - $2}'
}
d_p99=$(paired p99)
d_p50=$(paired p50)
# shellcheck disable=SC2086
added_p99=$(median $d_p99)
# shellcheck disable=SC2086
added_p50=$(median $d_p50)
log "added latency through rampart (median of per-round differences): p50 $added_p50 ms, p99 $added_p99 ms (rounds: $d_p99)"

# Soak: no goroutine or memory growth across SOAK proxied requests.
log "soak: $WARM warm-up requests, then $((SOAK - WARM)) more through rampart"
soak_line1=$("$BIN/loadgen" http --url "$via_rampart" --conns "$CONNS" --count "$WARM" --duration 10m)
sleep 2 # let closed connections' goroutines finish before reading
g1=$(metric "$admin_port" go_goroutines)
m1=$(metric "$admin_port" process_resident_memory_bytes)
soak_line2=$("$BIN/loadgen" http --url "$via_rampart" --conns "$CONNS" --count "$((SOAK - WARM))" --duration 10m)
sleep 2
g2=$(metric "$admin_port" go_goroutines)
m2=$(metric "$admin_port" process_resident_memory_bytes)
soak_err=$(( $(kv errors "$soak_line1") + $(kv errors "$soak_line2") ))
soak_n=$(( $(kv requests "$soak_line1") + $(kv requests "$soak_line2") ))
log "soak: $soak_n answered, $soak_err errors; goroutines $g1 -> $g2, RSS $m1 -> $m2 bytes"

mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
table="$TMP/proxy.md"
{
  echo "Measured $machine."
  echo
  echo "**Throughput**: 1 KiB page, \`Cache-Control: no-store\`, nginx origin (1 worker); wrk -t1 -c$CONNS -d${SECS}s, keep-alive; $ROUNDS interleaved rounds."
  echo
  echo "| path | req/s (median) | rounds |"
  echo "|---|---:|---|"
  echo "| direct to the origin | $(fmt0 "$m_direct") | $(printf '%s ' "${r_direct[@]}" | xargs) |"
  echo "| nginx reverse proxy | $(fmt0 "$m_nginx") | $(printf '%s ' "${r_nginx[@]}" | xargs) |"
  echo "| rampart (full pipeline) | $(fmt0 "$m_rampart") | $(printf '%s ' "${r_rampart[@]}" | xargs) |"
  echo
  echo "rampart/nginx = **$(ratio "$m_rampart" "$m_nginx")** (target >= 0.7), rampart/direct = **$(ratio "$m_rampart" "$m_direct")**. rampart forwarded $(fmt0 $((hits_after - hits_before))) requests to the origin during the rounds and answered ${cache_hits:-0} from its cache."
  echo
  echo "**Added latency** at a fixed $(fmt0 "$rate") req/s (${LAT_SHARE} of rampart's median throughput), $CONNS connections, ${LAT_SECS}s, median of $LAT_ROUNDS rounds (bench/loadgen, latency from the scheduled send time):"
  echo
  echo "| path | p50 ms | p99 ms | p99.9 ms | failed or missed |"
  echo "|---|---:|---:|---:|---:|"
  for path in direct nginx rampart; do
    echo "| $path | ${lat[$path,p50,m]} | ${lat[$path,p99,m]} | ${lat[$path,p999,m]} | ${lat[$path,err,m]} |"
  done
  echo
  echo "p99(rampart) - p99(direct), median of the per-round differences = **$added_p99 ms** (target < 1 ms; rounds: $d_p99 ms); p50 difference $added_p50 ms (rounds: $d_p50 ms)."
  echo
  echo "**Soak**: $(fmt0 "$soak_n") requests through rampart ($CONNS connections, as fast as they go), $soak_err failed."
  echo
  echo "| reading | go_goroutines | process_resident_memory_bytes |"
  echo "|---|---:|---:|"
  echo "| after $(fmt0 "$WARM") (warm-up) | $g1 | $(fmt0 "$m1") ($(mib "$m1") MiB) |"
  echo "| after $(fmt0 "$SOAK") | $g2 | $(fmt0 "$m2") ($(mib "$m2") MiB) |"
} >"$table"
cat "$table"
if [ "$WRITE_DOC" = 1 ]; then replace_section proxy "$table"; fi
