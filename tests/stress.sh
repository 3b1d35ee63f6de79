#!/usr/bin/env bash
# Run the whole suite N times (default 3) with two CPU hogs beside it, as on a loaded machine, with the README's
# pytest arguments. Usage: tests/stress.sh [N] [extra pytest args...]   e.g. tests/stress.sh 3 -x
# Every run's summary line is printed; the exit code is the number of failed runs (0: no run failed).
# The hogs are this script's children and are killed on any exit (including Ctrl-C).
set -uo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
shift || true

hogs=()
stop_hogs() {
  for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${hogs[@]}"; do wait "$pid" 2>/dev/null; done
  hogs=()
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM

for _ in 1 2; do
  python -c "while 1: pass" &
  hogs+=("$!")
done
# as CI runs it: PostgreSQL and the browser test are mandatory, nothing skips quietly
export LAB_REQUIRE_POSTGRES=1 CI=true
echo "stress: ${runs} run(s) of the suite beside 2 CPU hogs (pids ${hogs[*]}) on $(nproc) cores"

read -r -a readme_args <<<"$(grep -m1 -E '^python -m pip install -r requirements.txt && python -m pytest' README.md |
  sed 's/.*python -m pytest//')"
failed=0
for i in $(seq 1 "$runs"); do
  log=$(mktemp -t "stress-run-${i}-XXXX.log")
  started=$(date +%s)
  if python -m pytest -q "${readme_args[@]}" "$@" >"$log" 2>&1; then
    verdict=passed
  else
    verdict=FAILED
    failed=$((failed + 1))
  fi
  echo "run ${i}: ${verdict} in $(( $(date +%s) - started )) s: $(tail -n 1 "$log") (log: ${log})"
  grep -E "^(FAILED|ERROR) " "$log" || true
done
echo "stress: ${failed} of ${runs} run(s) failed"
exit "$failed"
