#!/usr/bin/env bash
# Install what the test suite needs (when missing) and run it. Used by README and .ci/run.
#   bash tools/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v jackd >/dev/null || need_apt+=(jackd2)
command -v Xvfb >/dev/null || need_apt+=(xvfb xauth)
ldconfig -p | grep -q libportaudio.so.2 || need_apt+=(libportaudio2)
ldconfig -p | grep -q libEGL_mesa.so.0 || need_apt+=(libegl1 libegl-mesa0 libgl1-mesa-dri)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "tools/test.sh: installing ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# torch==2.13.0 is the CPU build on these machines; an unpinned torch would pull a CUDA build.
if ! python3 -c "import torch" 2>/dev/null; then
    python3 -m pip install -q "torch==2.13.0"
fi
python3 -m pip install -q -e ".[test]"

python3 -m ruff check vj tools tests
set +e
python3 -m pytest -q "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
    echo "tools/test.sh: pytest collected no tests — that is a failure" >&2
    exit 1
fi
exit $rc
