#!/usr/bin/env bash
# bench/cache.sh (issue 5): cache-hit throughput and memory per cached entry.
#
#  1. The origin (nginx, bench/nginx-origin.conf) serves a 1 KiB page with
#     Cache-Control: public, max-age=60. rampart (bench/rampart-pipeline.yaml:
#     the whole pipeline, no rule firing) and nginx proxy_cache
#     (bench/nginx-cache.conf) each serve it from their cache; wrk (1 thread,
#     CONNS keep-alive connections, SECS seconds), ROUNDS interleaved rounds,
#     medians, ratio rampart/nginx. The origin direct is measured too, for
#     scale. Each proxy is checked to answer from its cache before timing,
#     and rampart's origin requests during the rounds are counted.
#  2. Memory per cached entry: the cache package's own benchmark
#     (BenchmarkMemoryPerEntry: 2 KiB pages with typical headers, heap per
#     entry after GC), and BenchmarkCacheHit for the in-process cost of a hit.
#
# Writes section "cache" of docs/benchmarks.md unless WRITE_DOC=0.
# Usage: bash bench/cache.sh   (environment: ROUNDS SECS CONNS WRITE_DOC KEEP_TMP)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
CONNS=${CONNS:-64}
WRITE_DOC=${WRITE_DOC:-1}

bench_init cache
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
wait_port "$origin_port" "$LAST_PID"
nginx_start nginx "$BENCH_DIR/nginx-cache.conf" "HOST=$HOST" "PORT=$nginx_port" "ORIGIN=$HOST:$origin_port"
wait_port "$nginx_port" "$LAST_PID"
rampart_start rampart "$rampart_port" "$admin_port" "http://$HOST:$origin_port" --config "$BENCH_DIR/rampart-pipeline.yaml"
rampart_pid=$LAST_PID
wait_port "$rampart_port" "$rampart_pid"
wait_port "$admin_port" "$rampart_pid"

direct="http://$HOST:$origin_port/cached.html"
via_nginx="http://$HOST:$nginx_port/cached.html"
via_rampart="http://$HOST:$rampart_port/cached.html"

# Fill both caches, then check that the next answer is a hit.
for u in "$via_nginx" "$via_rampart"; do curl -fsS -o /dev/null "$u"; done
hdr=$(curl -fsS -D - -o /dev/null "$via_rampart")
grep -qi '^rampart-cache: HIT' <<<"$hdr" || die "rampart did not answer from its cache: $hdr"
hdr=$(curl -fsS -D - -o /dev/null "$via_nginx")
grep -qi '^x-cache-status: HIT' <<<"$hdr" || die "nginx did not answer from its cache: $hdr"
log "both proxies answer the page from their caches"

for u in "$direct" "$via_nginx" "$via_rampart"; do wrk_rps "$u" 2 "$CONNS" >/dev/null; done
up0=$(metric "$admin_port" rampart_upstream_requests_total)

declare -a r_direct=() r_nginx=() r_rampart=()
for ((round = 1; round <= ROUNDS; round++)); do
  r_direct+=("$(wrk_rps "$direct" "$SECS" "$CONNS")")
  r_nginx+=("$(wrk_rps "$via_nginx" "$SECS" "$CONNS")")
  r_rampart+=("$(wrk_rps "$via_rampart" "$SECS" "$CONNS")")
  log "round $round: direct ${r_direct[-1]}, nginx proxy_cache ${r_nginx[-1]}, rampart ${r_rampart[-1]} req/s"
done
up1=$(metric "$admin_port" rampart_upstream_requests_total)
m_direct=$(median "${r_direct[@]}")
m_nginx=$(median "${r_nginx[@]}")
m_rampart=$(median "${r_rampart[@]}")
log "median: direct $m_direct, nginx $m_nginx, rampart $m_rampart; rampart/nginx $(ratio "$m_rampart" "$m_nginx")"

log "cache package benchmarks (memory per entry, hit cost)"
bench_out=$(cd "$REPO" && go test -run XXX -bench '^Benchmark(MemoryPerEntry|CacheHit)$' -benchtime 100000x -count 3 ./internal/cache 2>&1) ||
  die "cache benchmarks failed: $bench_out"
echo "$bench_out" >"$TMP/cache-bench.txt"
per_entry=$(awk '/^BenchmarkMemoryPerEntry/ {for (i = 1; i < NF; i++) if ($(i+1) == "bytes/entry") print $i}' <<<"$bench_out")
overhead=$(awk '/^BenchmarkMemoryPerEntry/ {for (i = 1; i < NF; i++) if ($(i+1) == "overhead-bytes/entry") print $i}' <<<"$bench_out")
hit_ns=$(awk '/^BenchmarkCacheHit/ {for (i = 1; i < NF; i++) if ($(i+1) == "ns/op") print $i}' <<<"$bench_out")
hit_allocs=$(awk '/^BenchmarkCacheHit/ {for (i = 1; i < NF; i++) if ($(i+1) == "allocs/op") print $i}' <<<"$bench_out")
# shellcheck disable=SC2086
m_entry=$(median $per_entry)
# shellcheck disable=SC2086
m_over=$(median $overhead)
# shellcheck disable=SC2086
m_hit=$(median $hit_ns)
# shellcheck disable=SC2086
m_hit_allocs=$(median $hit_allocs)

table="$TMP/cache.md"
{
  echo "Measured $machine."
  echo
  echo "1 KiB page, \`Cache-Control: public, max-age=60\`, nginx origin (1 worker); wrk -t1 -c$CONNS -d${SECS}s, keep-alive; $ROUNDS interleaved rounds."
  echo
  echo "| path | req/s (median) | rounds |"
  echo "|---|---:|---|"
  echo "| direct to the origin (static file) | $(fmt0 "$m_direct") | $(printf '%s ' "${r_direct[@]}" | xargs) |"
  echo "| nginx proxy_cache hit | $(fmt0 "$m_nginx") | $(printf '%s ' "${r_nginx[@]}" | xargs) |"
  echo "| rampart cache hit (full pipeline) | $(fmt0 "$m_rampart") | $(printf '%s ' "${r_rampart[@]}" | xargs) |"
  echo
  echo "rampart/nginx proxy_cache = **$(ratio "$m_rampart" "$m_nginx")**. rampart asked the origin $(( up1 - up0 )) times during the rounds: every other answer was a hit (the entry is fresh for 60 s, so a run longer than that refreshes it)."
  echo
  echo "Memory per cached entry (\`go test -run XXX -bench '^Benchmark(MemoryPerEntry|CacheHit)\$' -benchtime 100000x -count 3 ./internal/cache\`, medians): **$(fmt0 "$m_entry") bytes per entry** for a 2 KiB page with typical headers, of which $(fmt0 "$m_over") bytes are overhead beyond the body. One hit in process (BenchmarkCacheHit): $m_hit ns, $m_hit_allocs allocs."
} >"$table"
cat "$table"
if [ "$WRITE_DOC" = 1 ]; then replace_section cache "$table"; fi
