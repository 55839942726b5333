#!/usr/bin/env bash
# Everything only a GPU can show for the generator (issues #4, #13), in one run of a few minutes
# on a CUDA machine: the `gpu` tests (fp16 parity and clamps on real-size nets, CUDA graphs with
# alpha, per-frame events, caller's G untouched, engine choice, TensorRT as built live, CUDA-GL
# interop over EGL and its fallback mid-show), the driver wiring end to end (tools/engine_smoke.py:
# build_engine → pacer → exchange → compositor, interop), the generator bench at 256/512/1024
# with 1080p upload interop vs host, and the live pipeline bench. Logs and JSON go to $OUT (or
# ./gpu-check-out). Each step has its own time limit, so one that hangs does not eat the rest.
# Without CUDA the same steps run their CPU path, shortened (gpu tests skip): a check of the
# script itself, end to end.
#
#   bash tools/gpu_check.sh --fetch   # here, with network: wheels into .whl/, EGL debs into .gl/
#   bash tools/gpu_check.sh           # there: unpacks .gl/ and .whl/ when present, then runs
#
# On the project's device tool: run(command="bash tools/gpu_check.sh", carry=[".whl", ".gl"]).
# The device image has torch, numpy, scipy, onnx, onnxruntime; .whl/ brings the rest of our
# imports for Python 3.12 (about 42 MB, av being most of it; onnxscript + onnx_ir + ml_dtypes
# for the ONNX export). onnxruntime-gpu and tensorrt are too big to carry: their rows report
# n/a or the build_engine fallback unless the image has them.
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--fetch" ]]; then
    mkdir -p .whl .gl
    for pkg in moderngl glcontext glfw sounddevice cffi pycparser python-rtmidi av soundfile \
        python-osc onnxscript onnx_ir ml_dtypes; do
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --implementation cp --platform manylinux_2_28_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            --platform manylinux1_x86_64 --platform any -d .whl "$pkg" || exit 1
    done
    lists=$(mktemp -d)
    o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
    mkdir -p "$lists/partial"
    # shellcheck disable=SC2086
    apt-get $o update -qq && (cd .gl && apt-get $o download libegl1 libglvnd0 libopengl0 \
        libgl1 libglx0 libgles2) || exit 1
    du -sh .whl .gl
    exit 0
fi

out=${OUT:-gpu-check-out}
mkdir -p "$out"
if compgen -G ".gl/*.deb" >/dev/null; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
nv_egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
if [[ -f $nv_egl ]]; then  # the NVIDIA EGL vendor, where glvnd does not find it on its own
    export __EGL_VENDOR_LIBRARY_FILENAMES=$nv_egl
fi
export PYTHONPATH=$PWD
if compgen -G ".whl/*.whl" >/dev/null; then
    # only what the image lacks: an upgraded copy of a package it has could break its torch
    need=()
    for f in .whl/*.whl; do
        mod=$(basename "$f" | cut -d- -f1 | tr 'A-Z' 'a-z')
        case $mod in python_rtmidi) mod=rtmidi ;; python_osc) mod=pythonosc ;; esac
        python3 -c "import $mod" 2>/dev/null || need+=("$f")
    done
    if ((${#need[@]})); then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            --target /tmp/vj-site "${need[@]}" || exit 1
    fi
    export PYTHONPATH=$PWD:/tmp/vj-site
fi
export PYTHONUNBUFFERED=1

step() {  # step NAME SECONDS CMD...: run with a limit, keep its output, go on either way
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s)"
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    tail -n 40 "$out/$name.log"
    echo "== $name: exit $rc"
    ((rc == 0)) || failed+=("$name")
}
failed=()

nvidia-smi >"$out/nvidia-smi.txt" 2>&1
python3 -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))" \
    >>"$out/nvidia-smi.txt" 2>&1
if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    cuda=1
else
    cuda=0
    echo "== no CUDA here: the CPU path, shortened (gpu tests skip)"
fi
step gpu-tests 150 python3 -m pytest -q -p no:cacheprovider -m gpu -rs \
    tests/test_gan_network.py tests/test_engine_cpu.py tests/test_engine_options.py \
    tests/test_export_onnx.py tests/test_render_interop.py
if ((cuda)); then
    step engine-smoke 80 python3 tools/engine_smoke.py --seconds 4 --size 512
    # fast rows at every size first, then the rows with slow builds (compile, export) at 512²
    step bench-generator 120 python3 tools/bench_generator.py --frames 100 --warmup 10 \
        --rows fp32,fp16,graphs,graphs_cl,chosen --json "$out/bench_generator.json"
    step bench-generator-builds 110 python3 tools/bench_generator.py --frames 100 --warmup 10 \
        --sizes 512 --rows compile,ort,trt --parity-seeds 1 --upload "" \
        --json "$out/bench_generator_builds.json"
    step bench-pipeline 50 python3 tools/bench_pipeline.py --seconds 10 --size 1280x720 \
        --json "$out/bench_pipeline.json"
else
    step engine-smoke 120 python3 tools/engine_smoke.py --seconds 2
    step bench-generator 240 python3 tools/bench_generator.py --frames 3 --warmup 1 \
        --rows fp32,graphs,chosen --parity-seeds 1 --threads 1 --json "$out/bench_generator.json"
    step bench-pipeline 90 python3 tools/bench_pipeline.py --seconds 4 --size 640x360 \
        --json "$out/bench_pipeline.json"
fi
if ((${#failed[@]})); then
    echo "== gpu_check: failed steps: ${failed[*]}"
    exit 1
fi
echo "== gpu_check: all steps passed (cuda=$cuda)"
