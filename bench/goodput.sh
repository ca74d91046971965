#!/usr/bin/env bash
# bench/goodput.sh (issue 6): the same attack scenarios against the demo
# origin directly, nginx set up against DDoS (bench/nginx-ddos.conf),
# HAProxy with stick tables (bench/haproxy-ddos.cfg) and rampart with its
# defaults (rampart run --upstream ..., no config file).
#
# For every scenario (a rampart-sim preset) and every system, in that
# order: a fresh demo origin (rampart-sim --origin-only, default capacity:
# 16 workers, queue 64), a fresh proxy in front of it, then rampart-sim
# against the proxy for DUR with LEGIT legitimate visitors and the preset at
# SCALE, reading the origin's counters (--origin-stats) so it knows how much
# of the attack reached the origin. The proxy's CPU time over the run and
# its peak RSS (all its processes) are read from /proc. Then both are
# stopped. The results (DIR/SCENARIO.SYSTEM.json and .proc) are turned into
# the Markdown table by bench/goodputtable and written into section
# "goodput" of docs/benchmarks.md unless WRITE_DOC=0.
#
# Usage: bash bench/goodput.sh   (environment: SCENARIOS SYSTEMS DUR SCALE
# LEGIT WRITE_DOC KEEP_TMP RESULTS=dir to keep the raw results)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SCENARIOS=${SCENARIOS:-"none get-flood cache-bust search-flood post-flood slowloris slow-post slow-read h2-rapid-reset browser-botnet mixed ddosia random-404 header-random login-flood pingback head-flood carpet multi-vector"}
SYSTEMS=${SYSTEMS:-"direct nginx haproxy rampart"}
DUR=${DUR:-20s}
SCALE=${SCALE:-1}
LEGIT=${LEGIT:-50}
WRITE_DOC=${WRITE_DOC:-1}

bench_init goodput
(cd "$REPO" && go build -o "$BIN/" ./bench/goodputtable) || die "building goodputtable failed"
RES=${RESULTS:-$TMP/results}
mkdir -p "$RES"
machine_start=$(machine_line)
log "machine: $machine_start"
log "scenarios: $SCENARIOS; systems: $SYSTEMS; $DUR each, scale $SCALE, $LEGIT legitimate visitors"

# run_one SCENARIO SYSTEM: one run, results in $RES.
run_one() {
  local sc=$1 sy=$2 oport pport aport opid ppid="" target before after line
  free_port oport
  bg_start "origin-$sc-$sy" "$BIN/rampart-sim" --origin-only --origin-addr "$HOST:$oport"
  opid=$LAST_PID
  wait_port "$oport" "$opid"
  case $sy in
    direct)
      target="http://$HOST:$oport/"
      ;;
    nginx)
      free_port pport
      nginx_start "nginx-$sc" "$BENCH_DIR/nginx-ddos.conf" "HOST=$HOST" "PORT=$pport" "ORIGIN=$HOST:$oport"
      ppid=$LAST_PID
      wait_port "$pport" "$ppid"
      target="http://$HOST:$pport/"
      ;;
    haproxy)
      free_port pport
      haproxy_start "haproxy-$sc" "$BENCH_DIR/haproxy-ddos.cfg" "HOST=$HOST" "PORT=$pport" "ORIGIN=$HOST:$oport"
      ppid=$LAST_PID
      wait_port "$pport" "$ppid"
      target="http://$HOST:$pport/"
      ;;
    rampart)
      free_port pport
      free_port aport
      rampart_start "rampart-$sc" "$pport" "$aport" "http://$HOST:$oport"
      ppid=$LAST_PID
      wait_port "$pport" "$ppid"
      target="http://$HOST:$pport/"
      ;;
    *) die "unknown system $sy" ;;
  esac
  check_loopback_url "$target"
  if [ -n "$ppid" ]; then before=$("$BIN/loadgen" proc --pid "$ppid"); fi
  if ! "$BIN/rampart-sim" --target "$target" --origin-stats "http://$HOST:$oport/__demo/stats" \
    --preset "$sc" --duration "$DUR" --scale "$SCALE" --legit "$LEGIT" --json \
    >"$RES/$sc.$sy.json" 2>"$RES/$sc.$sy.err"; then
    log "rampart-sim reported an error for $sc against $sy: $(tail -1 "$RES/$sc.$sy.err")"
  fi
  if [ -n "$ppid" ]; then
    if kill -0 "$ppid" 2>/dev/null; then
      after=$("$BIN/loadgen" proc --pid "$ppid")
      awk -v b="$(kv cpu_s "$before")" -v a="$(kv cpu_s "$after")" -v p="$(kv peak_rss_bytes "$after")" \
        'BEGIN {printf "cpu_s=%.3f peak_rss_bytes=%s\n", a - b, p}' >"$RES/$sc.$sy.proc"
    else
      log "$sy exited during $sc"
      echo "cpu_s=-1 peak_rss_bytes=-1 exited=1" >"$RES/$sc.$sy.proc"
    fi
    stop_pid "$ppid"
  fi
  stop_pid "$opid"
  line=$(awk -v RS=',' '/"legit_success_ratio"|"legit_p99_ms"|"attack_sent"|"attack_reached_ratio"/' "$RES/$sc.$sy.json" | tr -d '\n "' || true)
  log "$sc / $sy: $line $(cat "$RES/$sc.$sy.proc" 2>/dev/null || true)"
}

for sc in $SCENARIOS; do
  for sy in $SYSTEMS; do
    run_one "$sc" "$sy"
  done
done
machine_end=$(machine_line)

table="$TMP/goodput.md"
{
  echo "Started $machine_start; ended with load average $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "Each scenario: rampart-sim preset at scale $SCALE for $DUR, $LEGIT legitimate visitors (10% without JavaScript), scattered source addresses; every system in front of its own fresh demo origin (16 workers, queue 64). Legit success counts every legitimate request (a challenged page is a failure for a visitor without JavaScript); the JS-capable column counts only the visitors who can solve challenges. p99 includes challenge solving. Attack reaching origin = attack requests the origin counted over attack requests (slow attacks: connections; HTTP/2: streams) sent. Proxy CPU is the proxy's CPU time over the run, all its processes; peak RSS sums each process's high-water mark."
  echo
  "$BIN/goodputtable" --dir "$RES" --scenarios "$SCENARIOS" --systems "$SYSTEMS"
} >"$table"
cat "$table"
if [ "$WRITE_DOC" = 1 ]; then replace_section goodput "$table"; fi
