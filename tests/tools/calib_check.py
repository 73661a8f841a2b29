#!/usr/bin/env python3
"""Independent answers for tests/calibrate_test.sh.

  calib_check.py network FILE K COLLECTIVE [MIN MAX] [in]
      the weighted least-squares latency and bandwidth (Gbit/s) of FILE's all-reduce times
      (nccl-tests all_reduce_perf output, or bytes,seconds CSV) for K workers, weights 1/t^2,
      the latency kept >= 0: "ALPHA BANDWIDTH_GBPS"
  calib_check.py compute CSV
      from worker,seconds lines: the step time (the mean, or the fastest worker's mean when
      the slowest and fastest workers' means differ by more than 2% and by more than 3
      standard errors of that difference), the pooled sigma of log step time around each
      worker's mean log, and the speeds: "STEP SIGMA [SPEED...]"
"""
import math
import statistics
import sys


def coefficients(coll, K):
    lg = math.ceil(math.log2(K))
    if coll == "ring":
        return 2 * (K - 1), 2 * (K - 1) / K
    if coll == "tree":
        return 2 * lg, 2 * lg
    return 2 * lg, 2 * (K - 1) / K  # halving_doubling


def read_network(path, in_place):
    rows, cols = [], None  # cols: all_reduce_perf's time columns, from its header
    for line in open(path):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            head = s[1:].split()
            if head[:2] == ["size", "count"]:
                cols = [i for i, h in enumerate(head) if h == "time"]
            continue
        f = s.replace(",", " ").split()
        if cols:
            if not f[0].isdigit():
                continue
            rows.append((float(f[0]), float(f[cols[1] if in_place else cols[0]]) * 1e-6))
        else:
            try:
                rows.append((float(f[0]), float(f[1])))
            except ValueError:
                pass  # the header
    return rows


def network(path, K, coll, lo=0.0, hi=float("inf"), in_place=False):
    a, b = coefficients(coll, K)
    pts = [(m, t) for (m, t) in read_network(path, in_place) if lo <= m <= hi]
    # minimise sum ((a alpha + b m x - t) / t)^2 over alpha >= 0 and x = 1/B
    A = [[a / t, b * m / t] for (m, t) in pts]
    y = [1.0] * len(pts)
    s11 = sum(r[0] * r[0] for r in A)
    s12 = sum(r[0] * r[1] for r in A)
    s22 = sum(r[1] * r[1] for r in A)
    t1 = sum(r[0] for r in A)
    t2 = sum(r[1] for r in A)
    det = s11 * s22 - s12 * s12
    alpha = (t1 * s22 - s12 * t2) / det if len(pts) > 1 and det > 1e-12 * s11 * s22 else -1
    x = (s11 * t2 - s12 * t1) / det if alpha >= 0 else 0
    if alpha < 0:
        alpha, x = 0.0, t2 / s22
    return alpha, 8 / x / 1e9


def compute(path):
    per = {}
    for line in open(path):
        s = line.strip()
        if not s or s.startswith("#") or s.startswith("worker"):
            continue
        w, t = s.split(",")
        per.setdefault(int(w), []).append(float(t))
    means = [sum(v) / len(v) for _, v in sorted(per.items())]
    var = [statistics.variance(v) / len(v) for _, v in sorted(per.items())]  # se^2 of a mean
    ss, dof = 0.0, 0
    for v in per.values():
        lm = sum(math.log(t) for t in v) / len(v)
        ss += sum((math.log(t) - lm) ** 2 for t in v)
        dof += len(v) - 1
    f, s = means.index(min(means)), means.index(max(means))
    differ = means[s] > 1.02 * means[f] and means[s] - means[f] > 3 * math.sqrt(var[f] + var[s])
    step = min(means) if differ else sum(sum(v) for v in per.values()) / sum(len(v) for v in per.values())
    out = [step, math.sqrt(ss / dof)]
    if differ:
        out += [min(means) / m for m in means]
    return out


if __name__ == "__main__":
    if sys.argv[1] == "network":
        args = sys.argv[2:]
        lo = float(args[3]) if len(args) > 3 else 0.0
        hi = float(args[4]) if len(args) > 4 else float("inf")
        print("%.9g %.9g" % network(args[0], int(args[1]), args[2], lo, hi,
                                     len(args) > 5 and args[5] == "in"))
    else:
        print(" ".join("%.9g" % v for v in compute(sys.argv[2])))
