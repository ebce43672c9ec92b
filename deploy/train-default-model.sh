#!/usr/bin/env bash
# Makes Pollen's default model: a small Llama trained by `pollen train` on the King James Version
# of the Bible (public domain), as Debian's bible-kjv-text package ships it, and copies the
# checkpoint to deploy/src/main/resources/default-model, from where the jar carries it.
#
# Two stages: 1,200 steps of 128-token sequences from random weights; then 300 steps of
# 2,048-token sequences (the context grows from 512 to 2,048) on the text plus a third of the
# chapters from Genesis to Acts written as dialogues ("Human: verse###Assistant: verse###", by
# default-model-dialogues.awk), so that a chat ends its replies with "###".
#
# CI never runs this: the checkpoint is committed. Reproducible from its seed on a machine with the
# same number of LibTorch threads (2 here); it takes about 45 minutes on 2 cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${POLLEN_TRAIN_DIR:-$root/deploy/target/default-model-training}"
mkdir -p "$work"

if ! command -v bible >/dev/null 2>&1; then
  echo "Installing Debian's bible-kjv (the reader) and bible-kjv-text (the text, public domain) ..."
  if [[ "$(id -u)" -eq 0 ]]; then apt-get update && apt-get install -y --no-install-recommends bible-kjv
  else sudo apt-get update && sudo apt-get install -y --no-install-recommends bible-kjv; fi
fi
echo "Extracting the text (Genesis 1:1 to Revelation 22:21) ..."
bible "Gen1:1-Rev22:21" > "$work/kjv.txt"

"$root/pollen" train --text "$work/kjv.txt" --out "$work/short" --threads 2 --seed 0 \
  --vocab 4096 --hidden 256 --layers 4 --heads 8 --kv-heads 4 --intermediate 688 --context 512 \
  --steps 1200 --batch 16 --length 128 --lr 0.003 --warmup 100 --weight-decay 0.1 --held-out 0.02

echo "Writing dialogues from the text and going on with 2,048-token sequences ..."
awk -f "$root/deploy/default-model-dialogues.awk" "$work/kjv.txt" > "$work/dialogues.txt"
cat "$work/dialogues.txt" "$work/kjv.txt" > "$work/corpus.txt"
"$root/pollen" train --from "$work/short" --text "$work/corpus.txt" --out "$work/model" --threads 2 --seed 0 \
  --context 2048 --steps 300 --batch 2 --length 2048 --lr 0.001 --warmup 30 --weight-decay 0.1 --held-out 0.02

dest="$root/deploy/src/main/resources/default-model"
mkdir -p "$dest"
cp "$work/model/config.json" "$work/model/model.safetensors" "$work/model/tokenizer.json" \
   "$work/model/tokenizer_config.json" "$dest/"
# The held-out text (the end of Revelation), for the tests of perplexity through a swarm and at long positions.
tail -c 60000 "$work/kjv.txt" | sed '1d' > "$dest/held-out.txt"
echo "The default model is in $dest"
