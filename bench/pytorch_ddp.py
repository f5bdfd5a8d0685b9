"""PyTorch DistributedDataParallel on the project's models: the baseline of bench/link.sh.

One process per rank (gloo, one thread each), the same models as
bench/pytorch_reference.py, random 28x28 inputs, SGD with momentum 0.9, DDP's
gradient buckets (`--bucket-cap-mb`, 0 meaning one bucket of everything). Each
rank times `--steps` steps twice: with DDP's all-reduces, and under
`no_sync()` (the same forward and backward, no communication). Rank 0 prints
one JSON line:

    {"engine": "pytorch-ddp", "torch": ..., "model": ..., "batch": ...,
     "worldSize": ..., "bucketCapMb": ..., "stepMs": ..., "noSyncStepMs": ...,
     "imagesPerSec": ...}

stepMs - noSyncStepMs is the communication the training waited for (and the
wait for the slower rank). Run it with Debian's interpreter (torch 1.13):

    /usr/bin/python3 bench/pytorch_ddp.py --rank 0 --world-size 2 --master-addr 127.0.0.1 --master-port 29620 &
    /usr/bin/python3 bench/pytorch_ddp.py --rank 1 --world-size 2 --master-addr 127.0.0.1 --master-port 29620
"""

import argparse
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_reference import MODEL_NAMES, make_model  # noqa: E402


def timed_steps(ddp, optimizer, x, y, steps: int, sync: bool) -> float:
    """Seconds for `steps` training steps (after a barrier, until a barrier)."""
    loss_fn = nn.CrossEntropyLoss()
    dist.barrier()
    started = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        if sync:
            loss_fn(ddp(x), y).backward()
        else:
            with ddp.no_sync():
                loss_fn(ddp(x), y).backward()
        optimizer.step()
    dist.barrier()
    return time.perf_counter() - started


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="cnn", choices=MODEL_NAMES)
    ap.add_argument("--batch", type=int, default=64, help="images per rank per step")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--bucket-cap-mb", type=float, default=25.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rank", type=int, required=True)
    ap.add_argument("--world-size", type=int, required=True)
    ap.add_argument("--master-addr", default="127.0.0.1")
    ap.add_argument("--master-port", type=int, default=29620)
    a = ap.parse_args(argv)

    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    dist.init_process_group("gloo", init_method=f"tcp://{a.master_addr}:{a.master_port}", rank=a.rank, world_size=a.world_size)
    model = make_model(a.model)
    model.train()
    cap = a.bucket_cap_mb if a.bucket_cap_mb > 0 else 1e6
    ddp = DistributedDataParallel(model, bucket_cap_mb=cap)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(a.batch, 1, 28, 28)
    y = torch.randint(0, 10, (a.batch,))
    timed_steps(ddp, optimizer, x, y, 3, True)  # warm-up
    with_sync = timed_steps(ddp, optimizer, x, y, a.steps, True)
    without = timed_steps(ddp, optimizer, x, y, a.steps, False)
    if a.rank == 0:
        print(json.dumps({
            "engine": "pytorch-ddp", "torch": torch.__version__, "model": a.model, "batch": a.batch,
            "worldSize": a.world_size, "bucketCapMb": a.bucket_cap_mb, "threads": a.threads,
            "stepMs": 1000 * with_sync / a.steps, "noSyncStepMs": 1000 * without / a.steps,
            "imagesPerSec": a.batch * a.world_size * a.steps / with_sync,
        }), flush=True)
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
