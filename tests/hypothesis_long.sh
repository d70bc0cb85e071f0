#!/usr/bin/env bash
# The property-based tests on fresh random seeds, round after round: the
# long random run that CI's derandomized one (tests/conftest.py) leaves out.
# Every round prints its seed; a failure ends the run and names the seed and
# the failing example (re-run it with --hypothesis-seed=SEED).
#   tests/hypothesis_long.sh [ROUNDS]        (default 20; about a minute a round)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}
files=$(grep -l "@given" tests/test_*.py)
for i in $(seq 1 "$rounds"); do
  seed=$(python3 -c "import random; print(random.SystemRandom().getrandbits(64))")
  echo "round $i of $rounds: --hypothesis-seed=$seed"
  CI= python -m pytest -q -p no:cacheprovider -x -m hypothesis --hypothesis-seed="$seed" \
    $files
done
