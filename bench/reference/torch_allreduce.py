"""torch.distributed.all_reduce alone, between processes on this machine: the baseline of
`npm run bench:allreduce -- --compare`. One process per rank, one thread each, float32 sums of
each size, median of the repeats after a barrier. Rank 0 prints one JSON line
{"backend": ..., "torch": ..., "ms": {floats: median ms}}.

    .venv/bin/python bench/reference/torch_allreduce.py --world-size 2 --port 29630 --backend gloo --sizes 1,262144

With --rank, this process is that one rank only (the others start elsewhere: another network
namespace), meeting at --master-addr; gloo then uses the interface that reaches it.
"""

import argparse
import json
import os
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def rank_main(rank: int, args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = args.master_addr
    os.environ["MASTER_PORT"] = str(args.port)
    dist.init_process_group(args.backend, rank=rank, world_size=args.world_size)
    medians = {}
    for floats in [int(s) for s in args.sizes.split(",")]:
        data = torch.full((floats,), float(rank + 1))
        dist.all_reduce(data)
        count = max(3, args.repeats // 4) if floats > 10_000_000 else args.repeats
        times = []
        for _ in range(count):
            dist.barrier()
            started = time.perf_counter()
            dist.all_reduce(data)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        medians[floats] = times[len(times) // 2]
    if rank == 0:
        print(json.dumps({"backend": args.backend, "torch": torch.__version__, "ms": medians}), flush=True)
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", default="gloo")
    parser.add_argument("--sizes", required=True)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rank", type=int, default=None)
    parser.add_argument("--master-addr", default="127.0.0.1")
    args = parser.parse_args()
    if args.rank is None:
        mp.spawn(rank_main, args=(args,), nprocs=args.world_size, join=True)
    else:
        rank_main(args.rank, args)


if __name__ == "__main__":
    main()
