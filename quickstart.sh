#!/usr/bin/env bash
# The main job in one command, from a fresh clone: set up .venv (torch first), build the demo brain
# (Dataset001_DemoBrain: 4 mm slices with a 1 mm reference), plan and preprocess it, fine-tune the shipped
# pre-trained weights self-supervised (ssft) within a small budget, predict, and evaluate against the
# reference: a table (cubic B-spline / shipped weights alone / after ssft) and a QC figure.
#
# Usage: bash quickstart.sh [--budget-minutes M]     (default 6; about 10 minutes in all on 2 CPU cores)
# Everything is written under ./isrnet_data (or $ISRNET_QUICKSTART_DIR), never into your own isrnet folders.
set -euo pipefail
cd "$(dirname "$0")"
budget=6
while [ $# -gt 0 ]; do
  case "$1" in
    --budget-minutes) budget="${2:?--budget-minutes needs a number}"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "quickstart.sh: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

SECONDS=0
step() { printf '\n\033[1m[%s | %dm%02ds] %s\033[0m\n' "$1" $((SECONDS / 60)) $((SECONDS % 60)) "$2"; }

step "1/6" "set up .venv: torch==2.13.0 first, then isrnet (first run: a minute or two)"
source scripts/setup_env.sh
set -euo pipefail

root="${ISRNET_QUICKSTART_DIR:-$PWD/isrnet_data}"
export isrnet_raw="$root/raw" isrnet_preprocessed="$root/preprocessed" isrnet_results="$root/results"
echo "data and results under $root"

step "2/6" "isr_convert demo   (deepmriprep's 0.5 mm template from PyPI -> 1 mm reference + 4 mm slices)"
isr_convert demo

step "3/6" "isr_plan_and_preprocess -d 1"
isr_plan_and_preprocess -d 1

run="$isrnet_results/Dataset001_DemoBrain/ssft"
if [ -f "$run/checkpoint_final.pth" ]; then
  step "4/6" "isr_train 1 ssft: already trained in $run (delete that folder to train again)"
else
  step "4/6" "isr_train 1 ssft --budget-minutes $budget   (self-supervised, from the shipped mrft weights)"
  rm -rf "$run"  # an interrupted earlier run: start again rather than resume with another budget
  isr_train 1 ssft --budget-minutes "$budget"
fi

step "5/6" "isr_predict: super-resolve the 4 mm input with the fine-tuned model"
isr_predict -i "$isrnet_raw/Dataset001_DemoBrain/imagesTr" -o "$root/predictions/Dataset001_DemoBrain" -d 1

step "6/6" "isr_benchmark -d 1: cubic B-spline vs shipped weights alone vs after ssft, against the 1 mm reference"
isr_benchmark -d 1 --no-upper-bound --classic nearest linear cubic

step "done" "in $((SECONDS / 60)) min $((SECONDS % 60)) s"
echo "super-resolved volume: $root/predictions/Dataset001_DemoBrain/"
echo "table:                 $isrnet_results/Dataset001_DemoBrain/benchmark/benchmark_summary.md"
echo "QC figure:             $(ls "$isrnet_results"/Dataset001_DemoBrain/benchmark/qc_*.png)"
echo "training curve:        $run/progress.png"
