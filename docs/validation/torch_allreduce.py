#!/usr/bin/env python3
"""All-reduce times against message size with torch.distributed, as a bytes,seconds CSV for
`syncsim calibrate network`.

Spawns --world processes on this host (gloo over loopback, or NCCL with one GPU each), or,
started by torchrun or mpirun (RANK and WORLD_SIZE set), joins their group. For each size
(powers of two from --min-bytes to --max-bytes) it all-reduces a float32 tensor --warmup times,
then times --iters all-reduces one by one (a barrier before each) and keeps the median. Rank 0
writes the CSV.

    /usr/bin/python3 docs/validation/torch_allreduce.py --world 2 --out allreduce.csv
    build/syncsim calibrate network allreduce.csv --workers 2

Needs PyTorch (Debian: python3-torch); the test suite does not run it.
"""
import argparse
import os
import statistics
import time


def measure(rank, world, args):
    import torch
    import torch.distributed as dist

    if "RANK" not in os.environ:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ["MASTER_PORT"] = str(args.port)
        dist.init_process_group(args.backend, rank=rank, world_size=world)
    else:
        dist.init_process_group(args.backend)
        rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(args.threads)
    device = "cpu"
    if args.backend == "nccl":
        device = f"cuda:{rank % torch.cuda.device_count()}"
        torch.cuda.set_device(device)
    rows = []
    size = args.min_bytes
    while size <= args.max_bytes:
        x = torch.ones(max(1, size // 4), dtype=torch.float32, device=device)
        for _ in range(args.warmup):
            dist.all_reduce(x)
        times = []
        for _ in range(args.iters):
            dist.barrier()
            if device != "cpu":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            dist.all_reduce(x)
            if device != "cpu":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        # every rank's median, the slowest counts (a collective ends when all have it)
        med = torch.tensor([statistics.median(times)], dtype=torch.float64)
        dist.all_reduce(med, op=dist.ReduceOp.MAX)
        rows.append((x.numel() * 4, med.item()))
        size *= 2
    if rank == 0:
        with open(args.out, "w") as f:
            f.write(f"# torch.distributed {args.backend} all_reduce, {world} processes, float32, "
                    f"median of {args.iters} after {args.warmup}\n")
            f.write("bytes,seconds\n")
            for b, s in rows:
                f.write(f"{b},{s:.9g}\n")
        print(f"wrote {args.out}: {len(rows)} sizes")
    dist.barrier()  # (no destroy_process_group: with gloo it can spin after the peer left)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default="gloo", choices=["gloo", "nccl"])
    p.add_argument("--world", type=int, default=2, help="processes to spawn (default 2)")
    p.add_argument("--min-bytes", type=int, default=1024)
    p.add_argument("--max-bytes", type=int, default=64 << 20)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--port", type=int, default=0, help="the rendezvous port (default: a free one)")
    p.add_argument("--out", required=True, help="the CSV to write")
    args = p.parse_args()
    if "RANK" in os.environ:
        measure(0, 0, args)
        return
    if args.port == 0:  # a free port, so that runs one after another never share one
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            args.port = s.getsockname()[1]
    import torch.multiprocessing as mp
    mp.spawn(measure, args=(args.world, args), nprocs=args.world, join=True)


if __name__ == "__main__":
    main()
