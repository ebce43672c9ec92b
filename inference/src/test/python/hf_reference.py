#!/usr/bin/env python3
"""Reference values from Hugging Face transformers for Pollen's engine tests.

For every checkpoint directory under inference/src/test/resources/reference/ (each made by
`pollen make-model`), this writes reference.json beside it with:
  - the fp32 logits of a full forward pass over a fixed token sequence (eager attention, CPU),
  - a greedy continuation computed token by token through transformers' own KV cache,
  - the ids and the decoded text of a fixed string through AutoTokenizer (our tokenizer.json).

Run it where transformers is installed (Pollen's JVM build does not need Python):
    python3 inference/src/test/python/hf_reference.py [OUTPUT_ROOT]
OUTPUT_ROOT defaults to the reference directory itself; the files are then committed as fixtures.
"""
import json
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "resources", "reference")
SEQUENCE_LENGTH = 24
GREEDY_PROMPT = 6
GREEDY_TOKENS = 16
TEXT = "Hello wörld, 日本語 🎉! The quick brown fox."


def token_sequence(vocab_size, seed):
    # A fixed pseudo-random sequence (a linear congruential generator, so Java can rebuild it).
    ids, state = [], seed
    for _ in range(SEQUENCE_LENGTH):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        ids.append((state >> 33) % vocab_size)
    return ids


def load(path):
    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    except TypeError:
        return AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="eager")


def reference(path):
    torch.use_deterministic_algorithms(True)
    model = load(path).eval()
    vocab = model.config.vocab_size
    ids = token_sequence(vocab, 12345)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
        past, current, greedy = None, torch.tensor([ids[:GREEDY_PROMPT]]), []
        for _ in range(GREEDY_TOKENS):
            out = model(current, past_key_values=past, use_cache=True)
            past = out.past_key_values
            token = int(out.logits[0, -1].argmax())
            greedy.append(token)
            current = torch.tensor([[token]])
    tokenizer = AutoTokenizer.from_pretrained(path)
    text_ids = tokenizer(TEXT)["input_ids"]
    return {
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "input_ids": ids,
        "logits": [[round(float(v), 6) for v in row] for row in logits],
        "greedy_prompt": ids[:GREEDY_PROMPT],
        "greedy_continuation": greedy,
        "tokenizer_text": TEXT,
        "tokenizer_ids": text_ids,
        "tokenizer_decoded": tokenizer.decode(text_ids, skip_special_tokens=True),
    }


def main():
    output_root = sys.argv[1] if len(sys.argv) > 1 else REFERENCE
    for name in sorted(os.listdir(REFERENCE)):
        path = os.path.join(REFERENCE, name)
        if not os.path.isfile(os.path.join(path, "config.json")):
            continue
        result = reference(path)
        os.makedirs(os.path.join(output_root, name), exist_ok=True)
        with open(os.path.join(output_root, name, "reference.json"), "w") as f:
            json.dump(result, f)
        print(f"{name}: logits {len(result['logits'])}x{len(result['logits'][0])}, "
              f"greedy {result['greedy_continuation']}, tokenizer {result['tokenizer_ids']}")


if __name__ == "__main__":
    main()
