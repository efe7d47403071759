#!/bin/bash
# The GPU proof of `--device cuda` (README "GPU and many machines"), in one short run (~6 minutes):
#   1. the machine: GPU, torch, CUDA;
#   2. the es-en recipe (the shipped model's options) trained for MINUTES on the GPU: target
#      tokens/s and the greedy dev BLEU of its validations (from its config.json history);
#   3. beam-5 translation of dev.tsv on the GPU with that model and with the shipped one:
#      sentences/s and BLEU, in the GPU's auto precision (bfloat16, else float16) and float32;
#   4. a torchrun launch, 0.3 minutes: one process per GPU (NCCL between them when there are two
#      or more; with one GPU a single process, which forms no process group).
# Run from the repository root, with attncli from this tree (no install):
#   bash benchmarks/gpu_proof.sh [MINUTES] > proof.txt
# CORPUS (default ../shared/corpora/tatoeba-es-en) must hold train.tsv and dev.tsv (on a machine
# without ../shared: copy them into gpu-corpus/, which git ignores, and set CORPUS=gpu-corpus); OUT (default
# /tmp/gpu-proof) receives the logs; DEVICE (default cuda) may be cpu for a dry run; PYTHON
# (default python3) needs torch with CUDA, sentencepiece, sacrebleu (and its numpy), safetensors,
# typer and rich. Results go to stdout as KEY=VALUE lines; progress to stderr.
set -u
MINUTES=${1:-3}
PY=${PYTHON:-python3}
CORPUS=${CORPUS:-../shared/corpora/tatoeba-es-en}
OUT=${OUT:-/tmp/gpu-proof}
DEVICE=${DEVICE:-cuda}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$OUT"
attncli() { "$PY" -m attncli "$@"; }
say() { echo "[gpu-proof $(date +%H:%M:%S)] $*" >&2; }

say "machine"
"$PY" - <<'EOF'
import torch
from attncli.machine import format_machine_report, machine_report
print(f"torch={torch.__version__} cuda={torch.version.cuda} gpus={torch.cuda.device_count()}")
for i in range(torch.cuda.device_count()):
    print(f"gpu{i}={torch.cuda.get_device_name(i)} compute_capability={torch.cuda.get_device_capability(i)}")
print(f"cpu={format_machine_report(machine_report())}")
EOF

say "shuffling $CORPUS/train.tsv"     # the file is sorted by length
"$PY" -c "import random,sys; l=open(sys.argv[1],encoding='utf-8').read().splitlines(); random.Random(1).shuffle(l); \
open(sys.argv[2],'w',encoding='utf-8').write('\n'.join(l)+'\n')" "$CORPUS/train.tsv" "$OUT/train.tsv"

say "training $MINUTES minutes on $DEVICE"
attncli train "$OUT/train.tsv" --dev "$CORPUS/dev.tsv" --out "$OUT/model" --overwrite --cache-dir "$OUT/cache" \
    --embed-size 256 --hidden-size 384 --dropout 0.25 --vocab-size 8000 --no-lexical-model --seed 1 \
    --max-minutes "$MINUTES" --device "$DEVICE" \
    2> "$OUT/train.log" > "$OUT/train.out"
echo "train_exit=$?"
"$PY" - "$OUT/model/config.json" <<'EOF'
import json, sys
info = json.load(open(sys.argv[1]))["info"]
history = info.get("history", [])
for record in history:
    print(f"validation step={record['step']} minutes={record['elapsed_s'] / 60:.2f} "
          f"dev_bleu_greedy={record['dev_bleu']:.2f} dev_loss={record['dev_loss']:.4f}")
print(f"train_precision={info.get('training_precision')} updates={history[-1]['step'] if history else 0}")
EOF
echo "train_tokens_per_s (the last progress lines): $(grep -o '[0-9,]* tok/s' "$OUT/train.log" | tail -4 | tr '\n' ' ')"

for model in "$OUT/model" models/es-en; do
  for precision in auto float32; do
    say "evaluate $model beam 5 $precision"
    attncli evaluate "$CORPUS/dev.tsv" --model "$model" --beam 5 --device "$DEVICE" --precision "$precision" --json \
        2>> "$OUT/evaluate.log" | "$PY" -c "import json,sys; s=json.load(sys.stdin); \
print(f\"evaluate model=$model precision={s['precision']} device={s['device']} bleu={s['bleu']:.2f} \
sentences_per_s={s['sentences'] / s['seconds']:.1f}\")"
  done
done

GPUS=$("$PY" -c "import torch; print(max(1, torch.cuda.device_count()))")
say "torchrun, $GPUS process(es) on $DEVICE"
"$PY" -m torch.distributed.run --standalone --nproc_per_node "$GPUS" -m attncli train "$OUT/train.tsv" \
    --dev "$CORPUS/dev.tsv" --out "$OUT/torchrun" --overwrite --cache-dir "$OUT/cache" --max-minutes 0.3 \
    --device "$DEVICE" 2> "$OUT/torchrun.log" > /dev/null
echo "torchrun_exit=$? processes=$GPUS"
tail -2 "$OUT/torchrun.log" | sed 's/^/torchrun_log: /'
