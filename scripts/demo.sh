#!/usr/bin/env bash
# The main job on the embedded default store ($DCREG_HOME, default ~/.cache/dcreg), offline:
# digits subset -> import -> push -> list -> pull by tag -> verify -> export -> eval -> card.
set -euo pipefail
WORK=${DEMO_DIR:-out/demo}
NAME=demo/digits-random-ipc10
mkdir -p "$WORK"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. a class-balanced random subset of scikit-learn's digits, as a plain .npz"
python scripts/make_digits_npz.py "$WORK/digits-ipc10.npz" --ipc 10 --seed 0

step "2. import it as a dcreg/1 artifact (safetensors + card + manifest)"
dcreg import "$WORK/digits-ipc10.npz" --format npz --dataset digits --method random --seed 0 \
  --license cc-by-4.0 --title "Random digits IPC 10" -o "$WORK/artifact" --overwrite

step "3. push it to the local store, tagged 'demo' (re-running is a no-op)"
dcreg push "$WORK/artifact" --name "$NAME" --tag demo

step "4. list by metadata"
dcreg list --dataset digits 'ipc<=10'

step "5. pull by tag into a fresh directory (verified before anything is written)"
rm -rf "$WORK/pulled"
dcreg pull "$NAME@demo" -o "$WORK/pulled"

step "6. verify the pulled copy"
dcreg verify "$WORK/pulled"

step "7. export a labelled PNG grid and a Hugging Face datasets copy"
dcreg export "$NAME@demo" --format png -o "$WORK/grid.png"
rm -rf "$WORK/hf"
dcreg export "$NAME@demo" --format hf-datasets -o "$WORK/hf"

step "8. evaluate under the DC protocol (ConvNet, 300+1 epochs, 5 runs) vs random real, and record"
harness eval "$NAME@demo" --protocol dc-noaug --baseline --record --json "$WORK/result.json"

step "9. the card now carries the result"
dcreg card "$NAME@demo" | sed -n '/## Evaluation results/,/## Lineage/p'

printf '\nDone. Grid: %s/grid.png  result: %s/result.json  store: %s\n' "$WORK" "$WORK" \
  "${DCREG_HOME:-~/.cache/dcreg}"
