#!/usr/bin/env python3
"""The clock of Liu et al.'s toy notebook (AsyncLocalSGDToyExample.ipynb in
google-deepmind/asyncdiloco), re-implemented here on its own, and a check of a syncsim
results database against it.

The notebook's workers take 0.58, 0.75, 1.51 and 3.33 s per step and communicate for free.
Its synchronous experiment runs rounds of H steps that end at the slowest worker's finish.
Its asynchronous one works as follows:
- the next worker to synchronize is the busy one that finishes first;
- the first arrival opens a window, and a worker that finishes within max_wait_time of that
  arrival joins it;
- once no busy worker finishes within the window, every idle worker starts a new task at
  the time of the window's last arrival;
- staleness is the number of arrivals since the worker's task began.
Training stops once the tasks synchronized hold H x 4 x phases local steps.

Time here is an integer number of 10 ms units, so every comparison is exact. The notebook
orders equal finish times with its float clock; the reference follows syncsim's documented
rule instead: the task that started first arrives first, and tasks started at the same
instant arrive in worker order.

A literal port of the notebook's loop, float clock and all (notebook_async), shows what
that choice changes: the two schedules differ only at arrivals that tie exactly, or that
end a task begun at such a tie (a float clock may split workers finishing together into two
windows, so that one restarts before the other arrives).

Usage:
  liu_schedule.py selfcheck
      reproduce the notebook's printed evaluation times
  liu_schedule.py ties GRACE_S DYLU(0|1) PHASES
      the notebook's float clock against the reference: how many arrivals differ (all of
      them at exact ties, or the run fails)
  liu_schedule.py check DB LABEL sync|async GRACE_S DYLU(0|1) PHASES
      compare run LABEL of DB (recorded with record.timeline) with the reference
"""
import sqlite3
import sys

SEC = [58, 75, 151, 333]  # the notebook's seconds per step, in 10 ms units
K = 4


def dylu_steps(H, w):
    """The paper's DyLU rule, max(1, floor(H v_w / v_max)), with v = 1 / seconds per step."""
    return max(1, (H * min(SEC)) // SEC[w])


def sync_schedule(H=20, phases=100):
    """Rounds of the synchronous experiment: one (start, end, worker, staleness, steps) per
    worker and round, in round order, then worker order."""
    out, now = [], 0
    for _ in range(phases):
        ends = [now + H * SEC[w] for w in range(K)]
        out += [(now, ends[w], w, 0, H) for w in range(K)]
        now = max(ends)
    return out


def async_schedule(H=20, grace=50, phases=100, dylu=False):
    """Arrivals of the asynchronous experiment: (start, time, worker, staleness, steps)."""
    busy = [False] * K
    start = [0] * K     # when the worker's current task began
    finish = [0] * K    # when it ends (while busy), or when the worker became idle
    task_id = [0] * K   # the model id its task started from
    steps = [0] * K
    model_id, now, window, total = 0, 0, None, 0
    out = []

    def train():
        for w in range(K):
            if not busy[w]:
                steps[w] = dylu_steps(H, w) if dylu else H
                start[w] = finish[w]
                finish[w] += steps[w] * SEC[w]
                task_id[w] = model_id
                busy[w] = True

    train()
    while total < H * K * phases:
        nxt = None
        if any(busy):
            _, _, nxt = min((finish[w], start[w], w) for w in range(K) if busy[w])
            if window is not None and finish[nxt] - window > grace:
                nxt = None  # outside the window: do not wait for it
        if nxt is not None:
            now = max(now, finish[nxt])
        if nxt is not None and (window is None or now - window <= grace):
            if window is None:
                window = now
            total += steps[nxt]
            out.append((start[nxt], now, nxt, model_id - task_id[nxt], steps[nxt]))
            model_id += 1
            busy[nxt] = False
            for w in range(K):
                if not busy[w]:
                    finish[w] = now  # the idle ones restart at the last arrival
        else:
            window = None
            train()
    return out


def notebook_async(H=20, grace=0.5, phases=100, dylu=False):
    """The notebook's AsyncExperiment loop as it is written: float seconds, the lowest
    worker id among equal floats (np.argmin), `start or now` truthiness. Arrivals as
    (start, time, worker, staleness, steps), times in seconds."""
    sec = [s / 100 for s in SEC]
    fut = [False] * K
    fin = [0.0] * K
    begun = [0.0] * K
    mid = [0] * K
    steps = [0] * K
    model_id, now, sync_start, total = 0, 0.0, None, 0
    out = []

    def train():
        for w in range(K):
            if not fut[w]:
                steps[w] = dylu_steps(H, w) if dylu else H
                begun[w] = fin[w]
                fin[w] += steps[w] * sec[w]
                mid[w] = model_id
                fut[w] = True

    def synchronizable():
        return (not sync_start) or (now - sync_start <= grace)

    train()
    while total < H * K * phases:
        nxt = None
        if any(fut):
            vals = [fin[w] if fut[w] else float("inf") for w in range(K)]
            nxt = vals.index(min(vals))
            if sync_start and (fin[nxt] - sync_start) > grace:
                nxt = None
        if nxt is not None:
            now = max(now, fin[nxt])
        if nxt is not None and synchronizable():
            sync_start = sync_start or now
            total += steps[nxt]
            out.append((begun[nxt], now, nxt, model_id - mid[nxt], steps[nxt]))
            model_id += 1
            fut[nxt] = False
            for w in range(K):
                if not fut[w]:
                    fin[w] = now
        else:
            sync_start = None
            train()
    return out


def ties(grace_s, dylu, phases):
    """Compare the notebook's float loop with the reference; every difference must be at an
    exact tie (its time, or its task's start, shared by two arrivals)."""
    ref = async_schedule(grace=round(grace_s * 100), phases=phases, dylu=bool(dylu))
    nb = notebook_async(grace=grace_s, phases=phases, dylu=bool(dylu))
    times = {}
    for (_, t, _, _, _) in ref:
        times[t] = times.get(t, 0) + 1
    tied = {t for t, n in times.items() if n > 1}
    ok, diffs = len(ref) == len(nb), 0
    for i, ((s, t, w, st, n), (_, nt, nw, nst, nn)) in enumerate(zip(ref, nb)):
        if abs(nt - t / 100) > 1e-6:
            print(f"FAIL: arrival {i}: the notebook at {nt}, the reference at {t / 100}")
            ok = False
        elif (w, st, n) != (nw, nst, nn):
            diffs += 1
            if t not in tied and s not in tied:
                print(f"FAIL: arrival {i} differs away from any tie: notebook (worker {nw}, "
                      f"staleness {nst}), reference (worker {w}, staleness {st})")
                ok = False
    print(f"{diffs} of {len(ref)} arrivals differ, all at exact ties" if ok else
          f"{diffs} of {len(ref)} arrivals differ")
    return ok


def eval_times(arrivals, every):
    """The notebook's evaluation times: the first arrival at or past each multiple of
    `every` local steps."""
    times, total, target = [], 0, every
    for (_, t, _, _, n) in arrivals:
        total += n
        if total >= target:
            times.append(t)
            target += every
    return times


def selfcheck():
    ok = True

    def expect(what, got, want):
        nonlocal ok
        if got != want:
            print(f"FAIL: {what}: got {got}, the notebook printed {want}")
            ok = False
        else:
            print(f"ok: {what}")

    # cell "Interactive Experiment": async, vanilla, max_wait_time 0.5 s, 100 phases,
    # an evaluation every 800 local steps
    printed = [20900, 40640, 60380, 80140, 99900, 120780, 140420, 160060, 180020, 199860]
    expect("async, grace 0.5 s: evaluation times",
           eval_times(async_schedule(grace=50, phases=100), 800), printed)
    expect("the notebook's own loop, float clock: evaluation times",
           [round(t * 100) for t in eval_times(notebook_async(grace=0.5, phases=100), 800)],
           printed)
    # cell "Sanity Check": sync, 5 phases, an evaluation every 80 local steps; and async
    # with max_wait_time 1000 s, every window gathering all four workers
    sync = [6660, 13320, 19980, 26640, 33300]
    rounds = sync_schedule(phases=5)
    expect("sync: round ends", [max(e for (_, e, _, _, _) in rounds[r * K:(r + 1) * K])
                                for r in range(5)], sync)
    expect("async, grace 1000 s: evaluation times",
           eval_times(async_schedule(grace=100000, phases=5), 80), sync)
    return ok


def check(db_path, label, mode, grace_s, dylu, phases):
    db = sqlite3.connect(db_path)
    row = db.execute("SELECT id FROM runs WHERE label = ? AND status = 'done'", (label,)).fetchone()
    if not row:
        print(f"FAIL: {label}: no finished run in {db_path}")
        return False
    rid = row[0]
    compute = {w: [] for w in range(K)}
    for (w, s, e) in db.execute("SELECT worker, start_s, end_s FROM timeline WHERE run_id = ?"
                                " AND kind = 'compute' ORDER BY start_s, worker", (rid,)):
        compute[w].append((s, e))
    grace = round(grace_s * 100)
    tol = 1e-6

    def close(a, b):
        return abs(a - b) <= tol

    errors = []
    if mode == "sync":
        ref = sync_schedule(phases=phases)
        seen = {w: 0 for w in range(K)}
        for (s, e, w, _, n) in ref:
            k = seen[w]
            seen[w] += 1
            if k >= len(compute[w]):
                errors.append(f"worker {w}: round {k} missing")
                continue
            cs, ce = compute[w][k]
            if not (close(cs, s / 100) and close(ce, e / 100)):
                errors.append(f"worker {w} round {k}: computes [{cs:.9f}, {ce:.9f}], the notebook "
                              f"[{s / 100}, {e / 100}]")
        count = len(ref)
        extra = sum(len(compute[w]) for w in range(K)) - len(ref)
        if extra > 0:
            errors.append(f"{extra} more compute intervals than the notebook's rounds")
    else:
        ref = async_schedule(grace=grace, phases=phases, dylu=bool(dylu))
        got = db.execute("SELECT sim_time_s, worker, staleness FROM updates WHERE run_id = ?"
                         " ORDER BY rowid", (rid,)).fetchall()
        if len(got) != len(ref):
            errors.append(f"{len(got)} arrivals, the notebook {len(ref)}")
        seen = {w: 0 for w in range(K)}
        for i, ((s, t, w, st, n), (gt, gw, gst)) in enumerate(zip(ref, got)):
            k = seen[w]
            seen[w] += 1
            cs, ce = compute[w][k] if k < len(compute[w]) else (float("nan"),) * 2
            # the task's local steps: its compute interval lasts steps x seconds per step
            steps_ok = close(cs, s / 100) and close(ce - cs, n * SEC[w] / 100)
            if not (close(gt, t / 100) and gw == w and gst == st and steps_ok):
                errors.append(f"arrival {i}: syncsim (t {gt:.9f}, worker {gw}, staleness {gst}, "
                              f"compute [{cs:.9f}, {ce:.9f}]); the notebook (t {t / 100}, "
                              f"worker {w}, staleness {st}, {n} steps from {s / 100})")
        count = len(ref)
    for e in errors[:5]:
        print(f"FAIL: {label}: {e}")
    if not errors:
        print(f"ok: {label}: {count} {'worker rounds' if mode == 'sync' else 'arrivals'} equal "
              f"the notebook's (times within {tol} s)")
    return not errors and count >= 400


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "selfcheck":
        sys.exit(0 if selfcheck() else 1)
    if len(sys.argv) == 5 and sys.argv[1] == "ties":
        sys.exit(0 if ties(float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])) else 1)
    if len(sys.argv) == 8 and sys.argv[1] == "check":
        _, _, db, label, mode, g, d, ph = sys.argv
        sys.exit(0 if check(db, label, mode, float(g), int(d), int(ph)) else 1)
    print(__doc__, file=sys.stderr)
    sys.exit(2)
