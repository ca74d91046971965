#!/usr/bin/env bash
# The full test suite: what README.md and .ci/run call. It installs what the
# tests need (scripts/deps.sh), vets, and runs every test with the race
# detector. Any failure exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
go test -race -count=1 -timeout 40m ./...
# Allocation guards: the race detector's sync.Pool drops items on purpose, so
# the tests that assert zero allocations are run once more without it.
go test -count=1 -timeout 10m -run 'Alloc' ./internal/...
