#!/usr/bin/env python3
"""A real data-parallel training run to set syncsim's predictions against: --world processes
on this host (torch.distributed, gloo), each training an MLP 784-256-10 with SGD on batches
of --batch random examples, for --steps timed steps after --warmup.

  --mode ddp    DistributedDataParallel: gradients all-reduced in buckets of --bucket-mb
                (PyTorch's default 25 MB: one bucket for this 0.8 MB model), overlapping the
                backward pass.
  --mode local  Local SGD: --H local steps, then the parameters flattened into one buffer,
                all-reduced, divided by the world size and copied back.

Prints one JSON line (rank 0): the wall time of the timed steps, the slowest rank's, and for
Local SGD the mean host work of a synchronization besides the all-reduce (flattening,
dividing, copying back: rank 0's). With
--times-out, every rank's compute-only step times (forward, backward, update; Local SGD's
steps that do not synchronize) as worker,seconds lines, for
`syncsim calibrate compute SCENARIO --times CSV`. docs/validation.md uses it; needs PyTorch
(Debian: python3-torch); the test suite does not run it.
"""
import argparse
import json
import os
import time


def run(rank, world, args):
    import torch
    import torch.distributed as dist

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(args.port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(args.threads)
    torch.manual_seed(1 + rank)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 10))
    for p in model.parameters():  # the same start everywhere
        dist.broadcast(p.data, 0)
    if args.mode == "ddp":
        net = torch.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=args.bucket_mb)
    else:
        net = model
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    loss_fn = torch.nn.CrossEntropyLoss()
    xs = torch.randn(4096, 784)
    ys = torch.randint(0, 10, (4096,))
    params = list(model.parameters())
    compute, host = [], []

    def step(i, timed):
        idx = torch.randint(0, 4096, (args.batch,))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn(net(xs[idx]), ys[idx]).backward()
        opt.step()
        t1 = time.perf_counter()
        if args.mode == "local" and world > 1 and (i + 1) % args.H == 0:
            h0 = time.perf_counter()
            flat = torch.cat([p.data.view(-1) for p in params])
            h1 = time.perf_counter()
            dist.all_reduce(flat)
            h2 = time.perf_counter()
            flat /= world
            torch.nn.utils.vector_to_parameters(flat, params)
            if timed:  # the host's work around the all-reduce
                host.append((h1 - h0) + (time.perf_counter() - h2))
        elif timed:
            compute.append(t1 - t0)

    for i in range(args.warmup):
        step(i, False)
    dist.barrier()
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(i, True)
    dist.barrier()
    wall = torch.tensor([time.perf_counter() - t0], dtype=torch.float64)
    dist.all_reduce(wall, op=dist.ReduceOp.MAX)
    if args.times_out:
        gathered = [None] * world
        dist.all_gather_object(gathered, compute)
        if rank == 0:
            with open(args.times_out, "w") as f:
                f.write("worker,seconds\n")
                for w, ts in enumerate(gathered):
                    for t in ts:
                        f.write(f"{w},{t:.9g}\n")
    if rank == 0:
        print(json.dumps({"mode": args.mode, "H": args.H if args.mode == "local" else None,
                          "world": world, "batch": args.batch, "steps": args.steps,
                          "bucket_mb": args.bucket_mb if args.mode == "ddp" else None,
                          "wall_s": round(wall.item(), 6),
                          "sync_host_s": round(sum(host) / len(host), 9) if host else None}),
              flush=True)
    dist.barrier()  # (no destroy_process_group: with gloo it can spin after the peer left)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=["ddp", "local"], required=True)
    p.add_argument("--H", type=int, default=8, help="Local SGD: steps between averagings")
    p.add_argument("--world", type=int, default=2)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--warmup", type=int, default=40)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--bucket-mb", type=float, default=25.0)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--port", type=int, default=0, help="the rendezvous port (default: a free one)")
    p.add_argument("--times-out", help="write compute-only step times here")
    args = p.parse_args()
    if args.port == 0:  # a free port, so that runs one after another never share one
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            args.port = s.getsockname()[1]
    import torch.multiprocessing as mp
    mp.spawn(run, args=(args.world, args), nprocs=args.world, join=True)


if __name__ == "__main__":
    main()
