#!/usr/bin/env bash
# Installs what rampart's tests and benchmarks need on a fresh Debian/Ubuntu
# machine: headless Chromium (the challenge's browser test), Pebble and
# pebble-challtestsrv (the ACME issuance test, built with go install into
# the Go bin directory, where the test looks besides PATH), and the peers the
# side-by-side benchmarks run (nginx, HAProxy, wrk, h2load). Go modules come
# from the Go module proxy when the tests build. Safe to run again: it only
# installs what is missing.
set -euo pipefail

# Pebble, Let's Encrypt's test ACME server: not in go.mod, only a test tool.
pebble_version=v2.10.3
gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
for tool in pebble pebble-challtestsrv; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "$gobin/$tool" ]; then
    echo "deps.sh: installing $tool $pebble_version into $gobin" >&2
    go install "github.com/letsencrypt/pebble/v2/cmd/$tool@$pebble_version"
  fi
done

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
command -v curl >/dev/null 2>&1 || need+=(curl)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "deps.sh: need root (or sudo) to install: ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "deps.sh: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null
$sudo apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
# The Debian packages start nginx/haproxy services; the benchmarks run their
# own instances on loopback ports, so stop the packaged ones if they started.
for svc in nginx haproxy; do
  if command -v systemctl >/dev/null 2>&1; then $sudo systemctl stop "$svc" >/dev/null 2>&1 || true; fi
  $sudo service "$svc" stop >/dev/null 2>&1 || true
done
