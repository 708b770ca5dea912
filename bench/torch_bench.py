"""PyTorch peer of `npm run bench`: forward+backward of each loss as a PyTorch user writes it
(F.cross_entropy; the Python cbloss package's composed focal and class-balanced losses;
F.binary_cross_entropy_with_logits; torchvision's sigmoid_focal_loss formula), on the CPU, at a given
thread count. Reads a JSON job on stdin, prints one JSON object of median milliseconds. The job's
optional "only" maps a shape ("NxC") to the losses measured there (default: all) and "min_reps" to
its fewest timed calls (default 3): run.js measures the 1 GiB shape with CE alone, once, as a call
there takes seconds."""
import json
import sys
import time

import torch
import torch.nn.functional as F


def median_ms(fn, budget_s, min_reps=3, max_reps=30):
    fn()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def main():
    job = json.load(sys.stdin)
    torch.manual_seed(0)
    out = {"torch": torch.__version__, "results": {}}
    for threads in job["threads"]:
        torch.set_num_threads(threads)
        for n, c in job["shapes"]:
            shape = f"{n}x{c}"
            only = job.get("only", {}).get(shape)
            min_reps = job.get("min_reps", {}).get(shape, 3)
            g = torch.Generator().manual_seed(1)
            x = (torch.randn(n, c, generator=g) * 2).requires_grad_(True)
            y = torch.randint(0, c, (n,), generator=g)
            element_losses = {"bce", "sigmoid-focal", "asl"}
            # the element targets only where an element loss is measured (1 GiB at the large shape)
            t = (torch.rand(n, c, generator=g) < 0.1).float() if only is None or element_losses & set(only) else None
            w = torch.tensor(job["weights"][f"{n}x{c}"], dtype=torch.float32)
            counts = torch.tensor(job["counts"][f"{n}x{c}"], dtype=torch.float32)
            log_prior = torch.log(counts / counts.sum())  # Balanced Softmax / logit adjustment, tau = 1
            quarter = counts ** -0.25
            margins = 0.5 * quarter / quarter.max()  # LDAM, max_m = 0.5
            sample_weight = torch.rand(n, generator=g)
            gamma, alpha = 2.0, 0.25

            def run(loss_fn):
                def step():
                    x.grad = None
                    loss_fn().backward()
                return step

            def focal_rows():
                ce = F.cross_entropy(x, y, reduction="none")
                p = torch.exp(-ce)
                return (1 - p) ** gamma * ce

            def sigmoid_focal():
                p = torch.sigmoid(x)
                ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
                p_t = p * t + (1 - p) * (1 - t)
                a_t = alpha * t + (1 - alpha) * (1 - t)
                return (a_t * ce * (1 - p_t) ** gamma).mean()

            def poly1():
                ce = F.cross_entropy(x, y, reduction="none")
                return (ce + (1 - torch.exp(-ce))).mean()

            def asymmetric(gamma_pos=1.0, gamma_neg=4.0, clip=0.05, eps=1e-8):
                # the ASL reference code (Ridnik et al.), with its mean over elements
                xs_pos = torch.sigmoid(x)
                xs_neg = (1 - xs_pos + clip).clamp(max=1)
                los = t * torch.log(xs_pos.clamp(min=eps)) + (1 - t) * torch.log(xs_neg.clamp(min=eps))
                pt = xs_pos * t + xs_neg * (1 - t)
                w = torch.pow(1 - pt, gamma_pos * t + gamma_neg * (1 - t))
                return -(los * w).mean()

            def ldam(s=30.0):
                # the LDAM reference code (Cao et al.): the margin at the target, scaled, cross-entropy
                index = torch.zeros_like(x, dtype=torch.bool)
                index.scatter_(1, y.view(-1, 1), True)
                batch_m = margins[y].view(-1, 1)
                output = torch.where(index, x - batch_m, x)
                return F.cross_entropy(s * output, y)

            losses = {
                "ce": lambda: F.cross_entropy(x, y),
                "cb-ce": lambda: (w[y] * F.cross_entropy(x, y, reduction="none")).mean(),
                "focal": lambda: focal_rows().mean(),
                "cb-focal": lambda: (w[y] * focal_rows()).mean(),
                "bce": lambda: F.binary_cross_entropy_with_logits(x, t),
                "sigmoid-focal": sigmoid_focal,
                "poly": poly1,
                "asl": asymmetric,
                "balanced-softmax": lambda: F.cross_entropy(x + log_prior, y),
                "ldam": ldam,
                "ce-weighted": lambda: (sample_weight * F.cross_entropy(x, y, reduction="none")).sum() / n,
            }
            for name, fn in losses.items():
                if only is not None and name not in only:
                    continue
                key = f"{name}|{shape}|{threads}"
                out["results"][key] = median_ms(run(fn), job["budget_s"], min_reps)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
