#!/usr/bin/env bash
# The compiled code (ipv6flow/_core.c, the classifier; ipv6flow/_speedups.c,
# the record walks and the sFlow walk; ipv6flow/_orgmap.c, the scorecard's
# per-batch part) under AddressSanitizer and UndefinedBehaviorSanitizer.
#
#   tests/sanitize.sh                 build sanitized, run the checks below
#   tests/sanitize.sh --build DIR     only build a sanitized copy in DIR
#   tests/sanitize.sh --fuzz DIR      build for atheris (clang, fuzzer-no-link)
#
# The source tree is copied to a scratch directory (SANITIZE_DIR, else a new
# one under /tmp) and the extensions are built there with
# -fsanitize=address,undefined -fno-sanitize-recover=all, so the working tree's
# own build is left alone. The checks then run from that copy with the
# sanitizer runtime preloaded into Python (ASAN_OPTIONS=detect_leaks=0: the
# interpreter keeps memory until exit on purpose), on the compiled path:
#
# * the hostile corpus (tests/hostile/generate.py) and every real capture of
#   ../shared/captures cut at 50 points: fast (compiled and numpy) and
#   reference reports identical (tests/test_hostile.py);
# * every real capture and sample, frame for frame, compiled against numpy
#   and reference, and the same with rows cut at every snap length
#   (tests/test_core.py), the link layers and tunnels of issues 14/19 on
#   generated frames cut at every byte and on the real captures holding them
#   (tests/test_fast_rules.py), with the compiled clients' rules, the columns
#   the pass reads and the HyperLogLog register update against their numpy
#   forms on real and hypothesis-made rows;
# * the grouping of DNS messages against Python's, on hypothesis-made spans
#   and real DNS (tests/test_nat64.py);
# * the hypothesis differential tests (tests/test_fast_hypothesis.py);
# * the scorecard, compiled against numpy, on the programme sample, every
#   real capture and random columns, with random maps
#   (tests/test_orgmap_compiled.py);
# * the prefix tests, translation's candidates and the in-place columns
#   (_core.c prefix_any, prefix_rows, xlat_candidates, compact) against their
#   numpy forms and Python integers, on hypothesis-made rows and every real
#   capture (tests/test_xlat_compiled.py);
# * the compiled sFlow walk (_speedups.walk_sflow) against the Python walk on
#   the real sFlow captures of ../shared/sampled/akvorado, the hostile
#   corpus's sFlow cases, every cut of a carrier frame and hypothesis-made
#   datagrams, and `analyze --sflow` of all those files in-process with both
#   decoders, compiled walk against Python walk (tests/test_sflow_walk.py;
#   not tests/test_sflow.py: its --workers 2 runs fork worker processes,
#   which can hang on a lock of the sanitizer runtime);
# * the file map (ipv6flow/_filemap.c): mapped batches against read ones on
#   every real pcap cut at a dozen points and on windows, a file that grows,
#   a file cut while its map is read (the SIGBUS guard), and the map's
#   arguments and slots (tests/test_filemap.py). Every test above reads its
#   plain pcap files through the map too;
# * the sums and the flows by time bin of a batch over many bins (_core.c
#   bin_sums, bin_flows) against their numpy forms (tests/test_summary.py,
#   tests/test_population.py).
#
# A sanitizer report aborts the process, so any finding fails the run. CI
# calls this script (.ci/run); it takes a few minutes.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mode=check
if [ "${1:-}" = "--build" ] || [ "${1:-}" = "--fuzz" ]; then
  mode=${1#--}
  SANITIZE_DIR=${2:?usage: tests/sanitize.sh --build|--fuzz DIR}
fi
WORK=${SANITIZE_DIR:-$(mktemp -d /tmp/ipv6flow-sanitize.XXXXXX)}
mkdir -p "$WORK"
PYTHON=${PYTHON:-python}

# the source tree, without build products and benchmark data
tar -C "$ROOT" --exclude=./.git --exclude=./build --exclude='*.so' \
    --exclude=./benchmarks/data --exclude='*.egg-info' --exclude=__pycache__ -cf - . \
  | tar -C "$WORK" -xf -
cd "$WORK"

flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
if [ "$mode" = fuzz ]; then
  # clang's sancov edges let libFuzzer (inside atheris) see the C code
  export CC=clang LDSHARED="clang -shared"
  flags="$flags -fsanitize=fuzzer-no-link"
  preload="$("$PYTHON" -c 'import atheris, os; print(os.path.join(atheris.path(), "asan_with_fuzzer.so"))')"
else
  export CC=${CC:-gcc}
  preload="$($CC -print-file-name=libasan.so)"
fi
# a build left in the scratch copy would count as up to date: start afresh
rm -rf build ipv6flow/*.so
CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" \
  "$PYTHON" setup.py -q build_ext --inplace >build.log 2>&1 || { cat build.log; exit 1; }
# setup.py's extensions are optional: make sure both really were built, sanitized
for ext in _core _speedups _orgmap _filemap; do
  so=$(ls ipv6flow/$ext.*.so 2>/dev/null || true)
  if [ -z "$so" ] || ! nm -D "$so" | grep -q __asan_report; then
    cat build.log
    echo "sanitize.sh: ipv6flow/$ext was not built with AddressSanitizer" >&2
    exit 1
  fi
done

export LD_PRELOAD="$preload"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export IPV6FLOW_SHARED="${IPV6FLOW_SHARED:-$ROOT/../shared}"
# the numpy kernel runs no compiled code: leave it to the normal suite
export IPV6FLOW_FAST_PATHS=compiled
"$PYTHON" - <<'EOF'
import ipv6flow._core, ipv6flow._speedups, ipv6flow._orgmap, ipv6flow._filemap, os
from ipv6flow.fast import core
from ipv6flow.analysis import scorecard
from ipv6flow.capture import sflow
assert core.compiled is not None, "the compiled classifier is not in use"
assert scorecard.compiled is not None, "the compiled scorecard part is not in use"
assert sflow._walk_sflow is not None, "the compiled sFlow walk is not in use"
for mod in (ipv6flow._core, ipv6flow._orgmap, ipv6flow._filemap):
    assert mod.__file__.startswith(os.getcwd()), mod.__file__
print("sanitized:", ipv6flow._core.__file__, ipv6flow._speedups.__file__,
      ipv6flow._orgmap.__file__)
EOF
if [ "$mode" != check ]; then
  echo "built in $WORK; run with LD_PRELOAD=$preload"
  exit 0
fi
"$PYTHON" -m pytest -q -p no:cacheprovider -x \
  tests/test_core.py tests/test_fast_rules.py tests/test_fast_hypothesis.py \
  tests/test_orgmap_compiled.py tests/test_xlat_compiled.py tests/test_filemap.py \
  "tests/test_nat64.py::test_dns_groups_match_by_bytes_not_by_id" \
  "tests/test_nat64.py::test_dns_groups_equal_python_grouping" \
  "tests/test_nat64.py::test_dns_groups_split_and_filter_as_message_by_message" \
  "tests/test_nat64.py::test_dns_parse_lowers_and_escapes_every_byte_as_python" \
  "tests/test_nat64.py::test_dns_parse_compiled_equals_python_on_any_bytes" \
  "tests/test_nat64.py::test_grouped_dns_evidence_equals_message_by_message" \
  "tests/test_summary.py::test_bins_of_a_batch_over_many_bins_compiled_as_numpy" \
  "tests/test_summary.py::test_bins_past_the_cap_compiled_as_numpy" \
  "tests/test_population.py::test_flows_per_bin_compiled_as_numpy" \
  "tests/test_hostile.py::test_hostile_file" \
  "tests/test_hostile.py::test_real_capture_cut_at_50_points" \
  tests/test_sflow_walk.py
cd /
[ -n "${SANITIZE_DIR:-}" ] || rm -rf "$WORK"
