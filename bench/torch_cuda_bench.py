"""PyTorch on the GPU, the peer of scripts/gpu-check.js: eager F.cross_entropy (fp32 and bf16) and the
Python cbloss class-balanced focal loss (forward+backward), the device copy bandwidth, and the pinned
host<->device bandwidth, timed with CUDA events (warm-up, median). Reads {"shapes": [[N, C], ...]}
on stdin, prints JSON keyed by "NxC"."""
import json
import sys

import torch
import torch.nn.functional as F


def median_ms(fn, reps=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def main():
    job = json.load(sys.stdin)
    out = {}
    for n, c in job["shapes"]:
        x = torch.randn(n, c, device="cuda").requires_grad_(True)
        y = torch.randint(0, c, (n,), device="cuda")
        w = torch.rand(c, device="cuda")

        def ce():
            x.grad = None
            F.cross_entropy(x, y).backward()

        xb = x.detach().to(torch.bfloat16).requires_grad_(True)

        def ce_bf16():
            xb.grad = None
            F.cross_entropy(xb, y).backward()

        def cb_focal():
            x.grad = None
            l = F.cross_entropy(x, y, reduction="none")
            p = torch.exp(-l)
            (w[y] * (1 - p) ** 2 * l).mean().backward()

        src = torch.empty(n * c, device="cuda")
        dst = torch.empty_like(src)
        copy_ms = median_ms(lambda: dst.copy_(src))
        copy_gbs = 2 * src.numel() * 4 / copy_ms / 1e6
        min_bytes = n * c * 4 * 2 + n * 4  # logits read, gradient written, labels read
        pinned = torch.empty(min(n * c, 1 << 27), pin_memory=True)
        on_device = torch.empty(pinned.numel(), device="cuda")
        h2d_ms = median_ms(lambda: on_device.copy_(pinned, non_blocking=True), reps=5)
        d2h_ms = median_ms(lambda: pinned.copy_(on_device, non_blocking=True), reps=5)
        out[f"{n}x{c}"] = {
            "ce": median_ms(ce),
            "ceBf16": median_ms(ce_bf16),
            "cbFocal": median_ms(cb_focal),
            "copyGBs": copy_gbs,
            "minBytesMs": min_bytes / copy_gbs / 1e6,
            "h2dGBs": pinned.numel() * 4 / h2d_ms / 1e6,
            "d2hGBs": pinned.numel() * 4 / d2h_ms / 1e6,
        }
        del x, xb, y, src, dst, pinned, on_device
        torch.cuda.empty_cache()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
