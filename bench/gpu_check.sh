#!/usr/bin/env bash
# One prepared GPU check of prodmatch: what the CPU test suite cannot cover, < 10 min on one H200.
#
#   bash bench/gpu_check.sh [OUTDIR]               the GPU run (OUTDIR default bench/results; $OUT on the device)
#   bash bench/gpu_check.sh --cpu-smoke [OUTDIR]   the same steps at tiny sizes on CPU (also: --dry-run, CPU_SMOKE=1)
#   bash bench/gpu_check.sh --fetch-wheels         HERE, before the device run: the wheels the device lacks into .whl/
#
# Writes OUTDIR/gpu_check.md (one markdown table: step, PASS/FAIL/SKIP, seconds, key numbers or the
# last error line; rewritten after every step, so a killed run still leaves its rows) and
# OUTDIR/gpu_check.log (everything printed). Every step runs even when an earlier one failed; a
# step that would start after BUDGET_S seconds is SKIP, and each step's timeout is cut to what is left.
#
# Steps:  install (carried .whl/ wheels + `pip install -e . --no-deps`), env,
#   1  train-image / train-text: AMP + channels-last ArcFace steps of kaggle-image-nfnet-l1 (eca_nfnet_l1,
#      512 px, batch 16) and kaggle-text-xlmr (xlm-roberta-base architecture) with RANDOM weights,
#      through prodmatch.encoders.train.fit; WARMUP + TIMED steps; images|titles/s, peak GPU memory
#   2  knn: prodmatch.neighbors.knn faiss vs torch (CUDA) vs cuml, 70,000 x 512 clustered, k=50, + the
#      phash model's Hamming search (exact ties): seconds, identical neighbour sets, tie-only differences
#   3  synth (kaggle preset) -> subsample -> train tiny-image -> embed tfidf / phash -> match -> stack ->
#      bundle -> predict test.csv (GPU embedding) -> score;  then pytest-gpu: the CUDA path of test files
#
# The device machine has no package registry: faiss-cpu, lightgbm, sparse-dot-topn, rapidfuzz, ImageHash, PyWavelets
# (and pandas 3.1.1, the pin) travel as wheels in .whl/ (`--fetch-wheels` here, then carry ".whl");
# cuml-cu13 / cudf-cu13 are far over the 64 MiB a call may carry, so the cuml backend reports SKIP there.
# Device run (tool `run`): command  bash bench/gpu_check.sh "$OUT"  with carry [".whl"] and timeout_s 600.
set -o pipefail
set -u
export PYTHONUNBUFFERED=1

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 2
SELF="$REPO/bench/gpu_check.sh"
HELPER="$REPO/bench/gpu_check.py"

# ------------------------------------------------------------------------------------ arguments
OUTDIR=""
INTERNAL=""
FETCH=0
while (($#)); do
  case $1 in
    --cpu-smoke|--dry-run) CPU_SMOKE=1 ;;
    --fetch-wheels) FETCH=1 ;;
    --internal) INTERNAL=$2; shift ;;
    -h|--help) sed -n '2,26p' "$SELF"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) OUTDIR=$1 ;;
  esac
  shift
done

# ------------------------------------------------------------------- settings (env overrides)
CPU_SMOKE=${CPU_SMOKE:-0}
NPROC=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || echo 2)
if [[ $CPU_SMOKE == 1 ]]; then
  # tiny sizes, CPU, same steps (cuML reports SKIP without CUDA)
  : "${SKIP_INSTALL:=1}" "${BUDGET_S:=420}" "${WARMUP:=1}" "${TIMED:=2}" "${CLASSES:=64}"
  : "${IMG_SIZE:=64}" "${IMG_BATCH:=4}" "${TRAIN_WORKERS:=0}" "${TXT_BATCH:=4}" "${TXT_LAYERS:=1}" "${TXT_VOCAB:=30000}"
  : "${KNN_N:=3000}" "${PRESET:=test}" "${TRAIN_ROWS:=100}" "${TEST_ROWS:=25}" "${SYNTH_VERIFY:=1}" "${WORKERS:=2}" "${SYNTH_WORKERS:=2}" "${FOLDS:=3}" "${IMG_MAX_STEPS:=5}"
  : "${PIPE_BATCH:=64}" "${PYTEST_ARGS:=tests/test_arcface.py}"
  : "${WORK:=/tmp/prodmatch-gpu-check-smoke}" "${THREADS:=1}"
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
fi
: "${SKIP_INSTALL:=0}"          # 1: the environment already has prodmatch and its needs
: "${BUDGET_S:=570}"            # whole-run wall budget; later steps SKIP, timeouts shrink to fit
: "${STEPS:=all}"               # comma list of step names to run (e.g. STEPS=knn,predict); all: every one
: "${WORK:=/tmp/prodmatch-gpu-check}"   # data, runs, models (never under OUTDIR: only 8 files come back)
: "${WORKERS:=$(( NPROC > 9 ? 8 : (NPROC > 1 ? NPROC - 1 : 1) ))}"  # DataLoader workers / synth processes
: "${THREADS:=0}"               # torch threads in train-step (0: torch's default)
# 1: training steps of the two Kaggle configs (sizes empty = the config's own)
: "${WARMUP:=3}" "${TIMED:=10}" "${CLASSES:=8811}"
: "${IMG_CONFIG:=kaggle-image-nfnet-l1}" "${IMG_SIZE:=}" "${IMG_BATCH:=}" "${TRAIN_WORKERS:=}"
: "${TXT_CONFIG:=kaggle-text-xlmr}" "${TXT_BATCH:=}" "${TXT_LAYERS:=}" "${TXT_VOCAB:=}"
# 2: KNN
: "${KNN_N:=70000}" "${KNN_D:=512}" "${KNN_K:=50}" "${KNN_BACKENDS:=faiss,torch,cuml}"
# 3: pipeline. kaggle preset = 34,250 train / 70,000 test postings, 32 px. TRAIN_ROWS / TEST_ROWS keep
# whole label groups up to that many rows (0: all). Why the train side is subsampled: on the 2-core
# dev machine the full kaggle train side took match 278 s and stack 601 s (phash + word + char TF-IDF),
# CPU work the GPU does not shorten. Estimate of this default (8,000 train rows, all 70,000 test rows)
# on 16 cores + H200, seconds: install 25, env 5, train-image 35, train-text 35, knn 30, synth 75
# (plan_dataset is single-threaded: ~40-60 s), train-tiny-image 60, embed 20, match 45, stack 55,
# bundle 3, predict 70, score 5: ~470, then pytest-gpu ~70 (last: SKIP when BUDGET_S is spent).
: "${PRESET:=kaggle}" "${SYNTH_MODE:=parallel}" "${SYNTH_DIR:=}" "${SYNTH_VERIFY:=0}"
: "${TRAIN_ROWS:=8000}" "${TEST_ROWS:=0}"
: "${SYNTH_WORKERS:=$(( NPROC > 1 ? NPROC - 1 : 1 ))}"   # processes rendering the JPEGs (SYNTH_MODE=parallel)
: "${FOLDS:=3}" "${IMG_EPOCHS:=1}" "${IMG_MAX_STEPS:=0}" "${PIPE_BATCH:=256}"
# TRAIN_JOBS > 1: folds side by side (`prodmatch train --jobs`, spawned processes sharing the GPU, each
# with WORKERS / TRAIN_JOBS DataLoader workers; if it fails the step says FAIL and trains them one by
# one). Default 1: in the spawned fold processes the DataLoader workers are spawned too (the start
# method is inherited), which cost 29 s instead of 0.5 s per 27-image embedding on the dev machine.
: "${TRAIN_JOBS:=1}"
# stacker: its models are every model of the run, so predict embeds test.csv with the trained image
# encoder on the GPU (the matcher's greedy union may leave the weak tiny encoder out: no GPU work)
: "${BUNDLE_USE:=stacker}"
: "${PYTEST_ARGS:=tests/test_neighbors.py tests/test_arcface.py tests/test_train.py tests/test_encoders.py tests/test_oof.py tests/test_predict.py}"
SITE=${SITE:-/tmp/prodmatch-site}   # where the carried wheels are installed (--target)
WHEEL_DIR=${WHEEL_DIR:-$REPO/.whl}  # the carried wheels
if [[ -z ${PY:-} ]]; then
  if [[ -x $REPO/.venv/bin/python ]]; then PY=$REPO/.venv/bin/python; else PY=python3; fi
fi
if [[ $SKIP_INSTALL != 1 && -z ${GPU_CHECK_PATH_SET:-} ]]; then
  # carried wheels first (they shadow the image's versions), then the source tree itself
  export PYTHONPATH="$SITE:$REPO/src${PYTHONPATH:+:$PYTHONPATH}" GPU_CHECK_PATH_SET=1
fi
# the --internal sub-shells of this script see the same settings
export CPU_SMOKE SKIP_INSTALL BUDGET_S STEPS WORK WORKERS THREADS WARMUP TIMED CLASSES IMG_CONFIG IMG_SIZE \
  IMG_BATCH TRAIN_WORKERS TXT_CONFIG TXT_BATCH TXT_LAYERS TXT_VOCAB KNN_N KNN_D KNN_K KNN_BACKENDS PRESET \
  SYNTH_MODE SYNTH_DIR SYNTH_VERIFY SYNTH_WORKERS TRAIN_ROWS TEST_ROWS FOLDS IMG_EPOCHS IMG_MAX_STEPS PIPE_BATCH TRAIN_JOBS BUNDLE_USE PYTEST_ARGS SITE WHEEL_DIR PY
RUN=$WORK/run
MODELS=$WORK/models
DATA_FULL=${SYNTH_DIR:-$WORK/data-$PRESET}
DATA=$WORK/data
PYVER=${PYVER:-3.12}   # the device's python3 (KINDS.md: 3.12.3), for --fetch-wheels
WHEELS="faiss-cpu==1.15.1 lightgbm==4.7.0 sparse-dot-topn==1.2.0 rapidfuzz==3.14.6 ImageHash==4.3.2 PyWavelets==1.10.0 pandas==3.1.1"

# ------------------------------------------------------------------------- --fetch-wheels (here)
if [[ $FETCH == 1 ]]; then
  exclude=$(git rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$exclude")" .whl
  grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
  # shellcheck disable=SC2086
  "$PY" -m pip download --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d .whl $WHEELS || exit 1
  du -sh .whl && ls -la .whl
  exit 0
fi

# ----------------------------------------------------------------- --internal STEP (sub-shells)
if [[ -n $INTERNAL ]]; then
  set -e
  case $INTERNAL in
    install)
      if compgen -G "$WHEEL_DIR/*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEEL_DIR"/*.whl
        ls "$WHEEL_DIR"
      else
        echo "FAIL: no $WHEEL_DIR/*.whl: run 'bash bench/gpu_check.sh --fetch-wheels' on the dev machine and carry .whl"
      fi
      if "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e "$REPO"; then
        export EDITABLE=ok
      else
        export EDITABLE="failed, PYTHONPATH=src used"
        echo "editable install failed: prodmatch is imported from PYTHONPATH=$REPO/src"
      fi
      "$PY" - <<'EOF'
import importlib
bad = []
for name in ("prodmatch", "prodmatch.cli", "faiss", "lightgbm", "sparse_dot_topn", "imagehash", "rapidfuzz", "timm", "transformers", "pandas"):
    try:
        importlib.import_module(name)
    except Exception as err:
        bad.append(f"{name} ({type(err).__name__}: {err})")
import prodmatch, pandas
print(f"prodmatch from {prodmatch.__file__}; pandas {pandas.__version__}")
if bad:
    raise SystemExit("import error: " + "; ".join(bad))
import os
print(f"KEYS imports=ok, editable install={os.environ['EDITABLE']}, pandas={pandas.__version__}, wheels={len(os.listdir(os.environ['WHEEL_DIR'])) if os.path.isdir(os.environ['WHEEL_DIR']) else 0}")
EOF
      ;;
    train-tiny)
      rm -rf "$RUN" "$MODELS"
      if ! "$PY" -m prodmatch train image --data "$DATA" --config "$WORK/tiny-image-gpu.yaml" --out "$RUN" \
          --jobs "$TRAIN_JOBS" --quiet; then
        echo "FAIL: prodmatch train --jobs $TRAIN_JOBS failed; training the folds one by one so the pipeline goes on"
        rm -rf "$RUN"
        "$PY" -m prodmatch train image --data "$DATA" --config "$WORK/tiny-image-gpu.yaml" --out "$RUN" --quiet
      fi
      ;;
    match)
      "$PY" -m prodmatch match --run "$RUN" --data "$DATA" --overwrite
      "$PY" "$HELPER" runinfo --run "$RUN" --what match
      ;;
    stack)
      "$PY" -m prodmatch stack --run "$RUN" --data "$DATA" --overwrite
      "$PY" "$HELPER" runinfo --run "$RUN" --what stack
      ;;
    pytest)
      # shellcheck disable=SC2086
      "$PY" -m pytest -q -p no:cacheprovider $PYTEST_ARGS
      ;;
    *) echo "unknown internal step $INTERNAL" >&2; exit 2 ;;
  esac
  exit 0
fi

# -------------------------------------------------------------------------------- output files
OUTDIR=${OUTDIR:-$REPO/bench/results}
mkdir -p "$OUTDIR" "$WORK" || exit 2
OUTDIR=$(cd "$OUTDIR" && pwd)
RESULT=$OUTDIR/gpu_check.md
LOG=$OUTDIR/gpu_check.log
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1
START=$(date +%s)
DEADLINE=$(( START + BUDGET_S ))
HAVE_SMI=0
command -v nvidia-smi >/dev/null 2>&1 && HAVE_SMI=1
MODE="GPU run"
[[ $CPU_SMOKE == 1 ]] && MODE="CPU smoke (tiny sizes; no GPU numbers)"

declare -a HEADER=() ROWS=()
NPASS=0 NFAIL=0 NSKIP=0
SMI_PID=""
cleanup() { [[ -n $SMI_PID ]] && kill "$SMI_PID" 2>/dev/null; }
trap cleanup EXIT

md_escape() { tr '\n' ' ' | sed -e 's/|/\\|/g' -e 's/[[:space:]]\+/ /g' | cut -c1-600; }

write_md() {
  local now elapsed
  now=$(date +%s); elapsed=$(( now - START ))
  {
    echo "# prodmatch GPU check: $MODE"
    echo
    for line in "${HEADER[@]}"; do echo "- $line"; done
    echo
    echo "| # | step | status | seconds | key numbers / last error line |"
    echo "|---|---|---|---|---|"
    for row in "${ROWS[@]}"; do echo "$row"; done
    echo
    echo "${#ROWS[@]} steps: $NPASS PASS, $NFAIL FAIL, $NSKIP SKIP; wall ${elapsed} s of BUDGET_S=${BUDGET_S}. Log: gpu_check.log beside this file."
  } > "$RESULT.tmp" && mv "$RESULT.tmp" "$RESULT"
}

record() {  # record NAME STATUS SECONDS NOTE
  local note
  note=$(printf '%s' "$4" | md_escape)
  case $2 in PASS) NPASS=$((NPASS + 1)) ;; FAIL) NFAIL=$((NFAIL + 1)) ;; *) NSKIP=$((NSKIP + 1)) ;; esac
  ROWS+=("| $(( ${#ROWS[@]} + 1 )) | $1 | **$2** | $3 | $note |")
  echo "=== [$1] $2 in $3 s: $4"
  write_md
}

want() { [[ $STEPS == all || ",$STEPS," == *",$1,"* ]]; }

gpu_window() {  # max GPU memory / utilisation sampled between two epoch times
  [[ -n $SMI_PID && -s $WORK/smi.csv ]] || return 0
  awk -F, -v a="$1" -v b="$2" '$1>=a && $1<=b && NF>=3 {if ($2>m) m=$2; if ($3>u) u=$3; n++}
    END {if (n) printf "gpu_mem_max=%d MiB, gpu_util_max=%d%%", m, u}' "$WORK/smi.csv"
}

step() {  # step NAME CAP_SECONDS COMMAND...   (KEYS_RE=regex: key lines of a CLI without a KEYS line)
  local name=$1 cap=$2
  shift 2
  want "$name" || return 0
  local now left tmo out t0 t1 rc secs status note keys err win
  now=$(date +%s); left=$(( DEADLINE - now ))
  if (( left < 15 )); then record "$name" SKIP 0 "time budget spent (BUDGET_S=$BUDGET_S)"; return 0; fi
  tmo=$(( cap < left ? cap : left ))
  out=$WORK/step-$name.out
  echo
  echo "=== [$name] $(date +%T), timeout ${tmo} s: $*"
  t0=$(date +%s.%N)
  timeout --kill-after=10 "$tmo" "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  t1=$(date +%s.%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
  keys=$(grep '^KEYS ' "$out" | tail -1 | cut -c6-)
  if [[ -z $keys && -n ${KEYS_RE:-} ]]; then keys=$(grep -E "$KEYS_RE" "$out" | tail -8 | tr '\n' ' '); fi
  win=$(gpu_window "$t0" "$t1")
  [[ -n $win ]] && keys="${keys:+$keys; }$win"
  note=$keys
  case $rc in
    0) status=PASS ;;
    3) status=SKIP; note="$(grep '^SKIP:' "$out" | tail -1)${keys:+; $keys}" ;;
    *)
      status=FAIL
      if [[ $rc == 124 || $rc == 137 ]]; then err="timeout after ${tmo} s"
      else
        err=$(grep -E '(Error|Exception)(:|$)|: error:|^FAIL|Killed|Traceback|error:' "$out" | grep -v '^KEYS ' | tail -1)
        [[ -z $err ]] && err=$(grep -v '^[[:space:]]*$' "$out" | tail -1)
        err="rc=$rc: $err"
      fi
      note="$err${keys:+; $keys}"
      ;;
  esac
  # a step that printed FAIL lines but exited 0 is still a failure
  if [[ $status == PASS ]] && grep -q '^FAIL' "$out"; then status=FAIL; note="$(grep '^FAIL' "$out" | tail -1); $keys"; fi
  record "$name" "$status" "$secs" "$note"
}

# ------------------------------------------------------------------------ header: GPU, versions
echo "prodmatch GPU check: $MODE; repo $REPO; out $OUTDIR; work $WORK; budget $BUDGET_S s; $(date -u '+%F %T') UTC"
if [[ $STEPS == all ]]; then rm -rf "$WORK"; mkdir -p "$WORK"; fi
if ((HAVE_SMI)); then
  nvidia-smi || true
  gpu_line=$(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null | head -1)
  HEADER+=("GPU: ${gpu_line:-nvidia-smi gave no answer}")
  ( while :; do
      printf '%s,%s\n' "$(date +%s.%N)" \
        "$(nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader,nounits 2>/dev/null | head -1 | tr -d ' ')"
      sleep 0.5
    done ) > "$WORK/smi.csv" 2>/dev/null &
  SMI_PID=$!
else
  echo "nvidia-smi: not found (no NVIDIA driver on this machine)"
  HEADER+=("GPU: none (nvidia-smi not found)")
fi
versions=$("$PY" -c 'import sys, torch; print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA build {torch.version.cuda}, cuda available {torch.cuda.is_available()}" + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))' 2>&1 | tail -1)
echo "$versions"
HEADER+=("$versions ($PY); $NPROC CPUs; $(date -u '+%F %T') UTC")
HEADER+=("sizes: train steps ${WARMUP} warm-up + ${TIMED} timed, ArcFace classes ${CLASSES}, image size ${IMG_SIZE:-config} batch ${IMG_BATCH:-config}, text batch ${TXT_BATCH:-config} layers ${TXT_LAYERS:-12} vocab ${TXT_VOCAB:-250002}; knn ${KNN_N} x ${KNN_D}, k=${KNN_K}; pipeline preset ${PRESET} (synth ${SYNTH_MODE}${SYNTH_DIR:+, reused $SYNTH_DIR}), TRAIN_ROWS=${TRAIN_ROWS} TEST_ROWS=${TEST_ROWS} (0 = all; whole label groups), ${FOLDS} folds x ${IMG_EPOCHS} epoch(s) tiny-image (--jobs ${TRAIN_JOBS}), max steps/epoch ${IMG_MAX_STEPS} (0 = all), workers ${WORKERS}, bundle --use ${BUNDLE_USE}")
HEADER+=("text model: xlm-roberta-base architecture (${TXT_LAYERS:-12} layers, hidden 768, vocab ${TXT_VOCAB:-250002}) built from a config with RANDOM weights and the package's WordPiece test tokenizer (no XLM-R weights or sentencepiece model offline; MiniLM weights are 88 MB, too big to carry); image model: eca_nfnet_l1, weights: null (random init)")
if [[ $TRAIN_ROWS != 0 || $TEST_ROWS != 0 ]]; then
  part() { if [[ $1 == 0 ]]; then echo "all $2 rows"; else echo "whole label groups up to $1 $2 rows ($3=$1)"; fi; }
  HEADER+=("pipeline SUBSAMPLED to fit the 10-minute run: $(part "$TRAIN_ROWS" train TRAIN_ROWS), $(part "$TEST_ROWS" test TEST_ROWS) of the $PRESET preset (TRAIN_ROWS=0 TEST_ROWS=0: the whole 34,250 / 70,000 kaggle set, minutes more: match and stack grow with the train rows, predict with the test rows)")
fi
HEADER+=("synth: SYNTH_MODE=$SYNTH_MODE (parallel = the generator with workers=$SYNTH_WORKERS (\`prodmatch synth shopee --workers\`): the JPEGs rendered in that many processes, byte-identical to one (checked with SYNTH_VERIFY=1); cli = \`prodmatch synth shopee\`, one core, ~5 min for kaggle)")
HEADER+=("cuML: used only when importable (cuml-cu13 and its CUDA libraries are far over the 64 MiB a device call may carry, and the device reaches no registry): otherwise knn reports cuml SKIP and backend auto = torch on CUDA")
write_md

# ------------------------------------------------------------------------------------- steps
if [[ $SKIP_INSTALL == 1 ]]; then
  want install && record install SKIP 0 "SKIP_INSTALL=1: using $PY as it is"
else
  step install 240 bash "$SELF" --internal install
fi
step env 60 "$PY" "$HELPER" env

# 1. ArcFace training steps of both Kaggle configs, random weights, AMP + channels-last on CUDA
train_args=(--warmup "$WARMUP" --timed "$TIMED" --classes "$CLASSES" --work "$WORK/trainstep" --threads "$THREADS")
[[ $CPU_SMOKE == 1 ]] && train_args+=(--allow-cpu)
[[ -n $TRAIN_WORKERS ]] && train_args+=(--workers "$TRAIN_WORKERS")
img_args=("${train_args[@]}")
[[ -n $IMG_SIZE ]] && img_args+=(--image-size "$IMG_SIZE")
[[ -n $IMG_BATCH ]] && img_args+=(--batch-size "$IMG_BATCH")
txt_args=("${train_args[@]}")
[[ -n $TXT_BATCH ]] && txt_args+=(--batch-size "$TXT_BATCH")
[[ -n $TXT_LAYERS ]] && txt_args+=(--layers "$TXT_LAYERS")
[[ -n $TXT_VOCAB ]] && txt_args+=(--vocab "$TXT_VOCAB")
step train-image 240 "$PY" "$HELPER" train-step --kind image --config "$IMG_CONFIG" "${img_args[@]}"
step train-text 200 "$PY" "$HELPER" train-step --kind text --config "$TXT_CONFIG" "${txt_args[@]}"

# 2. exact KNN backends
step knn 200 "$PY" "$HELPER" knn --n "$KNN_N" --d "$KNN_D" --k "$KNN_K" --backends "$KNN_BACKENDS"

# 3. the pipeline on the synthetic Kaggle-sized set, GPU embedding
if [[ -n $SYNTH_DIR ]]; then
  want synth && record synth SKIP 0 "SYNTH_DIR=$SYNTH_DIR reused"
else
  verify=(); [[ $SYNTH_VERIFY == 1 ]] && verify=(--verify)
  step synth 420 "$PY" "$HELPER" synth --preset "$PRESET" --out "$DATA_FULL" --mode "$SYNTH_MODE" --workers "$SYNTH_WORKERS" "${verify[@]}"
fi
step subsample 60 "$PY" "$HELPER" subsample --src "$DATA_FULL" --dst "$DATA" --train-rows "$TRAIN_ROWS" --test-rows "$TEST_ROWS"
step tiny-config 30 "$PY" "$HELPER" tiny-config --out "$WORK/tiny-image-gpu.yaml" --folds "$FOLDS" --epochs "$IMG_EPOCHS" \
  --workers "$(( WORKERS / TRAIN_JOBS > 0 ? WORKERS / TRAIN_JOBS : 1 ))" --max-steps "$IMG_MAX_STEPS" --eval-batch-size "$PIPE_BATCH"
KEYS_RE='OOF F1|held-out F1|partial' step train-tiny-image 360 bash "$SELF" --internal train-tiny
KEYS_RE='^wrote ' step embed-tfidf 240 "$PY" -m prodmatch embed tfidf --data "$DATA" --out "$RUN" --n-folds "$FOLDS" --fold-seed 0
KEYS_RE='^wrote ' step embed-phash 120 "$PY" -m prodmatch embed phash --data "$DATA" --out "$RUN" --n-folds "$FOLDS" --fold-seed 0
step match 300 bash "$SELF" --internal match
step stack 300 bash "$SELF" --internal stack
KEYS_RE='^wrote ' step bundle 60 "$PY" -m prodmatch bundle --run "$RUN" --out "$MODELS" --overwrite --use "$BUNDLE_USE"
KEYS_RE='^wrote |^  (embed|match|pair|stacker|total)' step predict 300 "$PY" -m prodmatch predict --data "$DATA" --models "$MODELS" \
  --out "$WORK/submission.csv" --batch-size "$PIPE_BATCH" --workers "$WORKERS" --quiet
KEYS_RE='f1=' step score 60 "$PY" -m prodmatch score --truth "$DATA/test_truth.csv" --pred "$WORK/submission.csv"

# the CUDA path of the unit tests that touch torch / knn (on CPU they run the CPU path only)
KEYS_RE='passed|failed|error' step pytest-gpu 180 bash "$SELF" --internal pytest

echo
cat "$RESULT"
(( NFAIL == 0 ))
