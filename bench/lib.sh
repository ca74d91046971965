# shellcheck shell=bash
# Helpers shared by the bench/ scripts. Sourced, never run on its own.
#
# Every process a script starts goes through bg_start, which records its
# pid; bench_cleanup (installed as an EXIT/INT/TERM trap by bench_init)
# stops each of them by pid, newest first, and removes the temporary
# directory. Ports are picked at run time from 39000-39999 among those
# nobody listens on. Every address is on 127.0.0.1; check_loopback_url
# refuses anything else before a load tool is started.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
DOC="$REPO/docs/benchmarks.md"
export PATH="/usr/local/go/bin:$PATH"
HOST=127.0.0.1

PIDS=()
USED_PORTS=()
TMP=""
BIN=""
LAST_PID=""

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# bench_init NAME: temp dir, cleanup trap, dependencies, binaries.
bench_init() {
  local name=$1
  TMP=$(mktemp -d "/tmp/rampart-bench-$name.XXXXXX")
  chmod 755 "$TMP"
  BIN="$TMP/bin"
  mkdir -p "$BIN"
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  bash "$REPO/scripts/deps.sh"
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  if [ -n "${BENCH_BIN:-}" ]; then
    # Development shortcut: binaries built beforehand (go build -o DIR/
    # ./cmd/rampart ./cmd/rampart-sim ./bench/loadgen).
    local b
    for b in rampart rampart-sim loadgen; do
      [ -x "$BENCH_BIN/$b" ] || die "BENCH_BIN=$BENCH_BIN has no $b"
      cp "$BENCH_BIN/$b" "$BIN/"
    done
    log "using the binaries of $BENCH_BIN"
  else
    log "building rampart, rampart-sim and loadgen into $BIN"
    (cd "$REPO" && go build -o "$BIN/" ./cmd/rampart ./cmd/rampart-sim ./bench/loadgen) || die "build failed"
  fi
}

# bench_cleanup stops every process started with bg_start, newest first,
# and removes the temp dir (kept with KEEP_TMP=1).
bench_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local i pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[i]}
    if [ -n "$pid" ]; then stop_pid "$pid"; fi
  done
  if [ -n "$TMP" ] && [ -d "$TMP" ]; then
    if [ "${KEEP_TMP:-0}" = 1 ] || [ "$rc" != 0 ]; then
      log "logs and configs kept in $TMP"
    else
      rm -rf "$TMP"
    fi
  fi
  exit "$rc"
}

# bg_start NAME CMD...: runs CMD in the background, stdout and stderr to
# $TMP/NAME.out and .err; sets LAST_PID.
bg_start() {
  local name=$1
  shift
  "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# stop_pid PID: SIGTERM, up to 10 s for it to exit, then SIGKILL. Only
# processes this script started are ever passed here.
stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || { forget_pid "$pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop on SIGTERM: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}

forget_pid() {
  local i
  for i in "${!PIDS[@]}"; do
    if [ "${PIDS[i]}" = "$1" ]; then PIDS[i]=""; fi
  done
  return 0
}

# free_port VAR: sets VAR to a port in 39000-39999 that nothing listens on
# (or connects from) and that this script has not handed out yet. It sets a
# variable rather than printing, so that the ports handed out are
# remembered (a $(...) subshell would forget them).
free_port() {
  # Locals are prefixed so that they cannot shadow the caller's variable.
  local _fp_p _fp_tries=0 _fp_u _fp_taken
  while ((_fp_tries++ < 500)); do
    _fp_p=$((39000 + RANDOM % 1000))
    _fp_taken=0
    for _fp_u in "${USED_PORTS[@]}"; do if [ "$_fp_u" = "$_fp_p" ]; then _fp_taken=1; fi; done
    [ $_fp_taken = 1 ] && continue
    if [ -z "$(ss -Htan "( sport = :$_fp_p )" 2>/dev/null)" ]; then
      USED_PORTS+=("$_fp_p")
      printf -v "$1" '%s' "$_fp_p"
      return 0
    fi
  done
  die "no free port in 39000-39999"
}

# wait_port PORT PID [SECONDS]: until 127.0.0.1:PORT accepts connections;
# fails if PID exits first.
wait_port() {
  local port=$1 pid=$2 secs=${3:-30} i
  for ((i = 0; i < secs * 20; i++)); do
    if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || die "process $pid exited before listening on $port (see $TMP)"
    sleep 0.05
  done
  die "nothing listens on $HOST:$port after ${secs}s"
}

# check_loopback_url URL: refuses any URL whose host is not a literal
# 127.x.y.z address.
check_loopback_url() {
  [[ $1 =~ ^http://127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}:[0-9]+(/.*)?$ ]] ||
    die "refusing $1: the benchmarks only send traffic to 127.0.0.0/8"
}

# render TEMPLATE OUT KEY=VALUE...: copies TEMPLATE to OUT replacing @KEY@.
render() {
  local tpl=$1 out=$2 kv k v
  shift 2
  cp "$tpl" "$out"
  for kv in "$@"; do
    k=${kv%%=*}
    v=${kv#*=}
    v=${v//\\/\\\\}
    v=${v//|/\\|}
    v=${v//&/\\&}
    sed -i "s|@$k@|$v|g" "$out"
  done
  if grep -q '@[A-Z_]*@' "$out"; then die "unfilled placeholder in $out: $(grep -o '@[A-Z_]*@' "$out" | head -1)"; fi
}

# nginx_user_line: the user directive for nginx workers (nobody when run
# as root, so workers never run as root; nothing otherwise).
nginx_user_line() {
  if [ "$(id -u)" = 0 ]; then echo "user nobody nogroup;"; else echo ""; fi
}

# nginx_start NAME TEMPLATE KEY=VALUE...: renders TEMPLATE into
# $TMP/NAME/nginx.conf (with TMP=$TMP/NAME and USER_LINE set) and starts
# nginx in the foreground (daemon off) in the background; LAST_PID is the
# master.
nginx_start() {
  local name=$1 tpl=$2
  shift 2
  local dir="$TMP/$name"
  mkdir -p "$dir/tmp"
  if [ "$(id -u)" = 0 ]; then chown -R nobody:nogroup "$dir/tmp"; fi
  render "$tpl" "$dir/nginx.conf" "TMP=$dir" "USER_LINE=$(nginx_user_line)" "$@"
  /usr/sbin/nginx -t -q -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" 2>"$dir/test.err" ||
    die "nginx config $dir/nginx.conf does not load: $(cat "$dir/test.err")"
  bg_start "$name" /usr/sbin/nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
}

# haproxy_start NAME TEMPLATE KEY=VALUE...: the same for HAProxy (-db:
# foreground); LAST_PID is the master.
haproxy_start() {
  local name=$1 tpl=$2
  shift 2
  local dir="$TMP/$name"
  mkdir -p "$dir"
  render "$tpl" "$dir/haproxy.cfg" "TMP=$dir" "$@"
  /usr/sbin/haproxy -c -q -f "$dir/haproxy.cfg" >"$dir/test.err" 2>&1 ||
    die "haproxy config $dir/haproxy.cfg does not load: $(cat "$dir/test.err")"
  bg_start "$name" /usr/sbin/haproxy -db -f "$dir/haproxy.cfg"
}

# rampart_start NAME LISTEN_PORT ADMIN_PORT UPSTREAM_URL [rampart run flags...]
rampart_start() {
  local name=$1 port=$2 admin=$3 up=$4
  shift 4
  mkdir -p "$TMP/$name-state"
  bg_start "$name" "$BIN/rampart" run --listen "$HOST:$port" --admin "$HOST:$admin" \
    --upstream "$up" --state-dir "$TMP/$name-state" "$@"
}

# wrk_rps URL SECONDS [CONNS]: one keep-alive wrk run (1 thread), prints
# requests per second; non-2xx answers are reported on stderr.
wrk_rps() {
  local url=$1 secs=$2 conns=${3:-64} out
  check_loopback_url "$url"
  out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency "$url" 2>&1) || die "wrk failed: $out"
  if grep -q 'Non-2xx' <<<"$out"; then log "wrk $url: $(grep 'Non-2xx' <<<"$out" | xargs)"; fi
  if grep -q 'Socket errors' <<<"$out"; then log "wrk $url: $(grep 'Socket errors' <<<"$out" | xargs)"; fi
  awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

# kv KEY LINE: the value of KEY in a key=value line.
kv() {
  tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p" | head -1
}

# median NUMBERS...: the median (mean of the middle two for an even count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}

# ratio A B: A/B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a/b; else print "n/a"}'; }

# fmt0 N: rounded to an integer, thousands separated by commas.
fmt0() { LC_ALL=C awk -v n="$1" 'BEGIN {n = sprintf("%.0f", n); s = ""; while (length(n) > 3) {s = "," substr(n, length(n)-2) s; n = substr(n, 1, length(n)-3)}; print n s}'; }

# metric ADMIN_PORT NAME: a metric's value from rampart's /metrics (the sum
# over its label sets).
metric() {
  curl -fsS --max-time 5 "http://$HOST:$1/metrics" |
    awk -v m="$2" '$1 == m || index($1, m "{") == 1 {s += $2; found = 1} END {if (found) printf "%.0f\n", s; else print "n/a"}'
}

# machine_line: one line describing the machine and its load right now.
machine_line() {
  local cpu
  cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
  printf '%s; %s cores (%s); %s; nginx %s; HAProxy %s; load average %s' \
    "$(date -u +'%Y-%m-%d %H:%M UTC')" "$(nproc)" "$cpu" "$(go version | awk '{print $3}')" \
    "$(/usr/sbin/nginx -v 2>&1 | sed 's|.*nginx/||')" "$(/usr/sbin/haproxy -v | awk 'NR==1 {print $3}')" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
}

# replace_section NAME FILE: replaces what lies between the markers
# "<!-- BEGIN NAME -->" and "<!-- END NAME -->" in $DOC with FILE's content.
replace_section() {
  local name=$1 file=$2
  grep -qx "<!-- BEGIN $name -->" "$DOC" && grep -qx "<!-- END $name -->" "$DOC" ||
    die "$DOC has no <!-- BEGIN $name --> / <!-- END $name --> markers"
  awk -v b="<!-- BEGIN $name -->" -v e="<!-- END $name -->" -v f="$file" '
    $0 == b {print; while ((getline l < f) > 0) print l; skip = 1; next}
    $0 == e {skip = 0}
    !skip {print}' "$DOC" >"$DOC.tmp" && mv "$DOC.tmp" "$DOC"
  log "updated the $name section of $DOC"
}

# write_page FILE BYTES: an HTML page of about BYTES bytes.
write_page() {
  local file=$1 size=$2
  {
    printf '<!doctype html><html><head><meta charset="utf-8"><title>bench</title></head><body>\n'
    local line='<p>The council publishes the annual budget; residents may comment until the end of the month.</p>'
    local n=$(( (size - 120) / (${#line} + 1) ))
    for ((i = 0; i < n; i++)); do echo "$line"; done
    printf '</body></html>\n'
  } >"$file"
}
