#!/usr/bin/env bash
# Resolve each GPU extra the way a fresh GPU box would, and say what it got: the torch build (CUDA 12 or 13),
# vllm, trl, transformers, unsloth, and every CUDA-13 package. Nothing is installed: `pip install --dry-run`
# in a throwaway venv per extra, against PyPI. Run on demand (a few minutes, network); figures in docs/gpu.md.
#
#   bash scripts/check_extras.sh                 # both extras: gpu (CUDA 13) and gpu-cu12
#   bash scripts/check_extras.sh gpu-cu12        # one
#   PIKA_CHECK_EXTRAS_KEEP=DIR bash scripts/check_extras.sh   # keep each pip --report JSON in DIR
#
# Local pip settings are ignored on purpose (PIP_CONFIG_FILE=/dev/null, no find-links/constraints): a
# local CPU torch wheel or a version cap would hide what PyPI gives the GPU box. Set
# PIKA_CHECK_EXTRAS_PIP_CONFIG=1 to resolve with this machine's pip settings instead (a private mirror).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
extras=("$@")
[ ${#extras[@]} -gt 0 ] || extras=(gpu gpu-cu12)

work=$(mktemp -d "${TMPDIR:-/tmp}/pika-check-extras.XXXXXX")
trap 'rm -rf "$work"' EXIT
keep=${PIKA_CHECK_EXTRAS_KEEP:-}
[ -z "$keep" ] || mkdir -p "$keep"

pip_env=(env)
if [ "${PIKA_CHECK_EXTRAS_PIP_CONFIG:-0}" != 1 ]; then
  pip_env=(env -u PIP_FIND_LINKS -u PIP_CONSTRAINT -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL -u PIP_NO_INDEX
           PIP_CONFIG_FILE=/dev/null)
fi

status=0
for extra in "${extras[@]}"; do
  venv="$work/venv-$extra"
  report="$work/$extra.json"
  "$PYTHON" -m venv "$venv"
  echo "== .[$extra]: pip install --dry-run --ignore-installed -e .[$extra] (fresh venv, $("$venv/bin/python" -V))"
  if ! "${pip_env[@]}" "$venv/bin/pip" install -q --disable-pip-version-check --dry-run --ignore-installed \
      --report "$report" -e ".[$extra]" >"$work/$extra.log" 2>&1; then
    echo "FAILED to resolve .[$extra]; pip said:"
    grep -v "is ignored" "$work/$extra.log" | tail -20
    status=1
    continue
  fi
  [ -z "$keep" ] || cp "$report" "$keep/$extra.json"
  "$PYTHON" - "$report" "$PWD" <<'PY'
import json, re, sys

sys.path.insert(0, sys.argv[2])
from rl.doctor.driver import min_driver  # standard library only

report = json.load(open(sys.argv[1]))
got = {}
for item in report["install"]:
    meta = item["metadata"]
    got[meta["name"].lower().replace("_", "-")] = (meta["version"], meta.get("requires_dist") or [])

def version(name):
    return got.get(name, ("-",))[0]

# torch's CUDA runtime: nvidia-cuda-runtime-cu12 (CUDA 12 wheels) or nvidia-cuda-runtime (CUDA 13 wheels)
runtime = next((version(n) for n in ("nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime") if n in got), None)
cuda = ".".join(runtime.split(".")[:2]) if runtime else None
torch_cuda = f"CUDA {cuda} build, needs driver >= {min_driver(cuda)}" if cuda else "no CUDA runtime: CPU build?"
cu13 = sorted(n for n in got if re.search(r"cu13|cuda.*13", n) or (n == "cuda-toolkit" and version(n).startswith("13")))
cu12 = sorted(n for n in got if re.search(r"-cu12$", n))
rows = [
    ("packages", str(len(got))),
    ("torch", f"{version('torch')} ({torch_cuda})"),
    *((name, version(name)) for name in
      ("vllm", "trl", "transformers", "peft", "accelerate", "datasets", "unsloth", "unsloth-zoo", "xformers",
       "torchao", "bitsandbytes", "flashinfer-python", "triton")),
    ("CUDA runtime", runtime or "none"),
    ("cuda-toolkit", version("cuda-toolkit")),
    ("CUDA 13 packages", ", ".join(cu13) or "none"),
    ("CUDA 12 packages", f"{len(cu12)} (" + ", ".join(cu12[:4]) + (", ..." if len(cu12) > 4 else "") + ")" if cu12 else "none"),
]
width = max(len(k) for k, _ in rows)
for key, value in rows:
    print(f"  {key:<{width}}  {value}")
PY
done
exit $status
