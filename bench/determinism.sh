#!/usr/bin/env bash
# Does the same seed give the same weights? The default model's recipe (Br35H held out, as its held-out runs train),
# cut to a few optimizer steps, trained twice as it is and twice with --full_determinism
# (torch.use_deterministic_algorithms); the largest weight difference between the two runs of each pair, and the
# training time, go to bench/results/determinism.md. About 20 minutes on 2 CPU cores with the default 4 steps.
#
#     bash bench/determinism.sh [steps] [scratch folder]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-4}
SCRATCH=${2:-$(mktemp -d)}
mkdir -p "$SCRATCH"
export HF_HUB_OFFLINE=1
RECIPE=(--dataset_name ../shared/data/brain-tumor-mri-v1 ../shared/data/brisc2025-no-tumor
  --held_out_dataset ../shared/data/br35h-2020 --masks_name_or_path ../shared/data/brain-tumor-mri-v1-masks
  --model_name_or_path runs/mnv2 --image_size 160 --per_device_train_batch_size 64 --per_device_eval_batch_size 128
  --weight_decay 0.05 --lr_scheduler_type cosine --warmup_steps 0.05 --label_smoothing_factor 0.05
  --dataloader_num_workers 1 --report_to none --learning_rate 5e-4 --mask_loss_weight 0.5 --lesion_transplant 0.4
  --correct_transplant_prior --transplant_t2_share 0.5 --transplant_t2_grow 2 --transplant_t2_core_floor 0.5
  --seed 44 --max_steps "$STEPS" --eval_strategy no --save_strategy no --load_best_model_at_end false
  --max_eval_samples 64)

for arm in as_is full_determinism; do
  extra=()
  [ "$arm" = full_determinism ] && extra=(--full_determinism)
  for run in 1 2; do
    python3 train_hf.py "${RECIPE[@]}" "${extra[@]}" --output_dir "$SCRATCH/$arm-$run" > "$SCRATCH/$arm-$run.log" 2>&1
  done
done

python3 - "$SCRATCH" "$STEPS" <<'EOF'
import json, sys
from datetime import datetime, timezone
from pathlib import Path
from safetensors.torch import load_file

scratch, steps = Path(sys.argv[1]), sys.argv[2]
rows = []
for arm in ("as_is", "full_determinism"):
    first, second = (load_file(scratch / f"{arm}-{run}" / "model.safetensors") for run in (1, 2))
    difference = max((first[key].float() - second[key].float()).abs().max().item() for key in first)
    seconds = [json.loads((scratch / f"{arm}-{run}" / "all_results.json").read_text())["train_runtime_s"] for run in (1, 2)]
    rows.append(f"| {arm.replace('_', ' ')} | {difference:.3g} | {seconds[0]:.1f} / {seconds[1]:.1f} |")
text = (f"# Same seed, same weights?\n\nCommand: `bash bench/determinism.sh {steps}` "
        f"({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC). The default model's recipe, Br35H held out, seed 44, "
        f"{steps} optimizer steps, trained twice per row on this machine's CPU.\n\n"
        "| training | largest weight difference between the two runs | training time of each run (s) |\n|---|---|---|\n"
        + "\n".join(rows) + "\n")
Path("bench/results/determinism.md").write_text(text)
print(text)
EOF
