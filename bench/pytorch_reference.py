"""PyTorch reference benchmark for the course's Fashion-MNIST models.

What it is for
--------------
`npm run bench` times our TypeScript/TensorFlow.js engine and prints ratios
"our engine / PyTorch on the same core".  This script supplies the PyTorch
side: it defines the same three models (cnn, wideresnet, wideresnet-dw),
trains each for a while on random data with SGD, and reports images/sec.
It also prints the models' parameter counts (`--params-only`), which tests
use to cross-check the parameter counts of our TypeScript models.

How it is called
----------------
Always with Debian's interpreter, which has torch installed:

    /usr/bin/python3 bench/pytorch_reference.py --params-only
    /usr/bin/python3 bench/pytorch_reference.py \
        --models cnn,wideresnet-dw,wideresnet --batches 32,128 \
        --min-seconds 3 --min-steps 3 --threads 1 --json

With --json it prints one JSON object per line, per (model, batch):
    {"engine": "pytorch", "torch": "<version>", "threads": 1, "model": ...,
     "batch": ..., "params": ..., "steps": ..., "seconds": ...,
     "imagesPerSec": ...}
Without --json it prints a readable table.  --params-only prints one JSON
object {"cnn": ..., "wideresnet": ..., "wideresnet-dw": ...} and exits.

Each measurement: torch.manual_seed(0), torch.set_num_threads(threads),
model.train(), SGD(lr=0.01, momentum=0.9), random inputs
torch.rand(batch, 1, 28, 28) and random labels, CrossEntropyLoss; one
warm-up step, then timed steps (zero_grad, forward, backward,
optimizer.step) until both --min-steps and --min-seconds are reached;
imagesPerSec = batch * steps / elapsed.

Expect dense wideresnet to be slow: at batch 128 on one core it runs at
about 6 images/s (about 20 s a step).  The caller chooses which configs run.

Dependencies: torch and the standard library only.
"""

import argparse
import json
import sys
import time

import torch
from torch import nn

MODEL_NAMES = ("cnn", "wideresnet-dw", "wideresnet")

EXPECTED_PARAMS = {
    "cnn": 225_034,
    "wideresnet": 17_117_466,
    "wideresnet-dw": 315_546,
}


def make_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3),  # 28 -> 26, pooled to 13
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),  # 13 -> 11, pooled to 5
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 5 * 5, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def cbr(cin: int, cout: int, depthwise: bool) -> nn.Sequential:
    """Conv 3x3 (same, no bias) -> BatchNorm -> ReLU.

    With depthwise=True the convolution uses groups=cin."""
    groups = cin if depthwise else 1
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding="same", bias=False, groups=groups),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, depthwise: bool):
        super().__init__()
        self.main = nn.Sequential(
            cbr(cin, cout, depthwise),
            nn.Dropout(0.01),
            cbr(cout, cout, depthwise),
        )
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        return self.main(x) + self.skip(x)


def make_wideresnet(depthwise: bool = False) -> nn.Module:
    c = [1, 16, 160, 320, 640]
    return nn.Sequential(
        cbr(c[0], c[1], depthwise),
        ResidualBlock(c[1], c[2], depthwise),
        ResidualBlock(c[2], c[2], depthwise),
        nn.MaxPool2d(2),
        ResidualBlock(c[2], c[3], depthwise),
        ResidualBlock(c[3], c[3], depthwise),
        nn.MaxPool2d(2),
        ResidualBlock(c[3], c[4], depthwise),
        ResidualBlock(c[4], c[4], depthwise),
        nn.AvgPool2d(7),
        nn.Flatten(),
        nn.Linear(c[4], 10),
    )


def make_model(name: str) -> nn.Module:
    if name == "cnn":
        return make_cnn()
    if name == "wideresnet":
        return make_wideresnet(depthwise=False)
    if name == "wideresnet-dw":
        return make_wideresnet(depthwise=True)
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def checked_params(name: str, model: nn.Module) -> int:
    n = count_params(model)
    expected = EXPECTED_PARAMS[name]
    assert n == expected, f"{name}: {n} trainable parameters, expected {expected}"
    return n


def bench_one(name: str, batch: int, threads: int, min_seconds: float, min_steps: int) -> dict:
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    model = make_model(name)
    params = checked_params(name, model)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    step()  # warm-up
    steps = 0
    start = time.perf_counter()
    while True:
        step()
        steps += 1
        elapsed = time.perf_counter() - start
        if steps >= min_steps and elapsed >= min_seconds:
            break
    return {
        "engine": "pytorch",
        "torch": torch.__version__,
        "threads": threads,
        "model": name,
        "batch": batch,
        "params": params,
        "steps": steps,
        "seconds": round(elapsed, 4),
        "imagesPerSec": round(batch * steps / elapsed, 3),
    }


def parse_list(text: str, conv):
    return [conv(t.strip()) for t in text.split(",") if t.strip()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODEL_NAMES),
                    help="comma-separated: " + ", ".join(MODEL_NAMES))
    ap.add_argument("--batches", default="32,128", help="comma-separated batch sizes")
    ap.add_argument("--min-seconds", type=float, default=3.0)
    ap.add_argument("--min-steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--params-only", action="store_true",
                    help="print JSON of the three models' parameter counts and exit")
    args = ap.parse_args(argv)

    if args.params_only:
        counts = {name: checked_params(name, make_model(name)) for name in MODEL_NAMES}
        print(json.dumps(counts))
        return 0

    models = parse_list(args.models, str)
    for m in models:
        if m not in MODEL_NAMES:
            ap.error(f"unknown model {m!r}; choose from {', '.join(MODEL_NAMES)}")
    batches = parse_list(args.batches, int)
    if not batches or any(b < 1 for b in batches):
        ap.error("--batches must be positive integers")
    if args.min_steps < 1:
        ap.error("--min-steps must be >= 1")
    if args.threads < 1:
        ap.error("--threads must be >= 1")

    if not args.json:
        print(f"PyTorch {torch.__version__}, threads={args.threads}")
        print(f"{'model':<14} {'batch':>5} {'params':>11} {'steps':>5} {'seconds':>8} {'images/s':>10}")
        sys.stdout.flush()
    for m in models:
        for b in batches:
            r = bench_one(m, b, args.threads, args.min_seconds, args.min_steps)
            if args.json:
                print(json.dumps(r))
            else:
                print(f"{r['model']:<14} {r['batch']:>5} {r['params']:>11,} {r['steps']:>5} "
                      f"{r['seconds']:>8.2f} {r['imagesPerSec']:>10.1f}")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
