"""Peer for `wensu bench generate`: Hugging Face transformers generating greedily with a GPT-2
folder (config.json + model.safetensors, as `wensu bench generate` exports the model it times),
float32 or bfloat16, on the CPU.

Decode time per token is measured as (time of generate(N new) - time of generate(1 new)) / (N - 1),
so the prompt's prefill is not counted, as in Wensu's figure. Prints one JSON line:
{"median_ms_per_token": ..., "tokens_per_s": ..., "prefill_ms": ..., ...}.
"""

import statistics
import time

import torch
from transformers import GPT2LMHeadModel

import peer


def main():
    ap = peer.parser(__doc__)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--prompt-ids", required=True, help="comma-separated token ids")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    args = ap.parse_args()
    peer.setup(ap, args)
    model = GPT2LMHeadModel.from_pretrained(args.model_dir).eval()
    if args.dtype == "bf16":
        model = model.to(torch.bfloat16)
    ids = torch.tensor([[int(x) for x in args.prompt_ids.split(",")]])
    attn = torch.ones_like(ids)

    def generate(n):
        with torch.inference_mode():
            t0 = time.perf_counter()
            out = model.generate(ids, attention_mask=attn, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                 pad_token_id=0, eos_token_id=None)
            dt = time.perf_counter() - t0
        assert out.shape[1] == ids.shape[1] + n
        return dt

    for _ in range(args.warmup):
        generate(2)
    per_token, prefill = [], []
    for _ in range(args.repeats):
        t1 = generate(1)
        tn = generate(args.new_tokens)
        prefill.append(t1 * 1e3)
        per_token.append((tn - t1) / (args.new_tokens - 1) * 1e3)
    ms = statistics.median(per_token)
    print(f'{{"median_ms_per_token": {ms:.4f}, "tokens_per_s": {1e3 / ms:.3f}, '
          f'"prefill_ms": {statistics.median(prefill):.3f}, "dtype": "{args.dtype}", '
          f'"torch": "{torch.__version__}", "threads": {torch.get_num_threads()}}}', flush=True)


if __name__ == "__main__":
    main()
