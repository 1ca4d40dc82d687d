"""Turns the raw counts scripts/bench-cost.sh collected into per-request figures.

The shell script runs the proxies and writes a manifest (one line per path and side:
a callgrind dump, an strace log, or two context-switch counts). This file reads them:

  report   the table of every path, as ratios to nginx's same side, next to the targets,
           then system calls by name and our top functions;
  check    our plaintext pair against bench/cost-baseline.txt (exit 1 when more than
           THRESHOLD worse, with the functions that moved);
  update   rewrites the baseline from this run.
"""

import argparse
import collections
import re
import sys

# Worse than the baseline by more than this fails the guard.
THRESHOLD = 0.03
# The allocator's entry points: a call to one of them from elsewhere is one allocation.
ALLOCATORS = {
    "malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign",
    "__libc_malloc", "__libc_calloc", "__libc_realloc", "__libc_memalign", "__posix_memalign",
}
# System calls that move bytes, for the bytes-per-call figure.
READ_WRITE = {"read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg"}
# Targets per proxy and per request, as ratios to nginx's same side (plaintext).
TARGETS = {
    ("ours", "instructions"): 0.7,
    ("ours-h2", "instructions"): 0.7,
    ("ours-mtls", "instructions"): 1.0,
}
ALLOC_TARGET = 4
OURS = ("ours", "ours-mtls", "ours-h2")


class Callgrind:
    """One callgrind dump: total instructions, self and inclusive cost per function,
    and the number of allocations."""

    def __init__(self, path):
        names = {}
        self.total = 0
        self.self_cost = collections.Counter()
        self.inclusive = collections.Counter()
        self.allocations = 0
        current = cfn = None
        pending = None  # (callee, count) until the call's cost line

        def name(text):
            m = re.match(r"\((\d+)\)(?: (.*))?$", text)
            if not m:
                return clean(text)
            if m.group(2) is not None:
                names[m.group(1)] = clean(m.group(2))
            return names.get(m.group(1), "?")

        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line:
                    continue
                head = line[0]
                if head.isdigit() or head in "+-*":
                    parts = line.split()
                    cost = int(parts[1]) if len(parts) > 1 else 0
                    if pending is not None:
                        self.inclusive[current] += cost
                        callee, count = pending
                        if callee in ALLOCATORS and current not in ALLOCATORS:
                            self.allocations += count
                        pending = None
                    else:
                        self.self_cost[current] += cost
                        self.inclusive[current] += cost
                elif line.startswith("fn="):
                    current = name(line[3:])
                elif line.startswith("cfn="):
                    cfn = name(line[4:])
                elif line.startswith("calls="):
                    pending = (cfn, int(line[6:].split()[0]))
                elif line.startswith(("totals:", "summary:")):
                    self.total = int(line.split()[1])


def clean(name):
    """A function's name without callgrind's recursion suffix (`f'2`)."""
    return re.sub(r"'\d+$", "", name)


class Strace:
    """One strace log: calls per system call, and the bytes the read/write family moved."""

    LINE = re.compile(r"^(?:\d+\s+)?(?:<\.\.\. (\w+) resumed>|(\w+)\()")

    def __init__(self, path):
        self.calls = collections.Counter()
        self.rw_calls = 0
        self.rw_bytes = 0
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = self.LINE.match(line)
                if not m:
                    continue  # signals, exits
                resumed, started = m.groups()
                name = resumed or started
                if started:
                    self.calls[name] += 1
                if name in READ_WRITE and started:
                    self.rw_calls += 1
                # A call's result is on its line, or on its `resumed` line.
                if name in READ_WRITE and "<unfinished" not in line and " = " in line:
                    result = line.rsplit(" = ", 1)[1].split()[0]
                    if result.isdigit():
                        self.rw_bytes += int(result)

    @property
    def total(self):
        return sum(self.calls.values())


def load(manifest):
    """{(path, side): {"callgrind": Callgrind, "strace": Strace, "ctx": (vol, invol)}}"""
    found = collections.defaultdict(dict)
    with open(manifest, encoding="utf-8") as f:
        for line in f:
            path, side, kind, *rest = line.rstrip("\n").split("\t")
            if kind == "callgrind":
                found[path, side]["callgrind"] = Callgrind(rest[0])
            elif kind == "strace":
                found[path, side]["strace"] = Strace(rest[0])
            elif kind == "ctx":
                found[path, side]["ctx"] = (int(rest[0]), int(rest[1]))
    return found


def per_request(found, n):
    """{(path, side): {figure: value per request}}"""
    out = {}
    for key, m in found.items():
        f = {}
        if "callgrind" in m:
            f["instructions"] = m["callgrind"].total / n
            f["allocations"] = m["callgrind"].allocations / n
        if "strace" in m:
            f["syscalls"] = m["strace"].total / n
            s = m["strace"]
            f["bytes_per_rw"] = s.rw_bytes / s.rw_calls if s.rw_calls else 0.0
        if "ctx" in m:
            f["ctx_voluntary"] = m["ctx"][0] / n
            f["ctx_involuntary"] = m["ctx"][1] / n
            f["ctx"] = (m["ctx"][0] + m["ctx"][1]) / n
        out[key] = f
    return out


def ratio(a, b):
    return a / b if b else float("nan")


def report(args):
    found = load(args.manifest)
    n = args.requests
    fig = per_request(found, n)
    paths = []
    for path, _ in found:
        if path not in paths:
            paths.append(path)
    print(f"\nCost per request, per proxy: {n} keep-alive 1 KB POSTs over {args.conns} connections"
          f" (closed model), counted after {args.warmup} warm-up requests. In brackets: the ratio"
          " to nginx's same side.\n")
    cols = [("instructions", "instructions", "{:,.0f}"), ("syscalls", "syscalls", "{:.2f}"),
            ("ctx", "ctx switches", "{:.3f}"), ("allocations", "heap allocs", "{:.2f}"),
            ("bytes_per_rw", "bytes/rw call", "{:.0f}")]
    print(f"{'path':<10} {'side':<7}" + "".join(f"{title:>24}" for _, title, _ in cols))
    for path in paths:
        for side in ("client", "server"):
            f = fig.get((path, side), {})
            ng = fig.get(("nginx", side), {})
            row = f"{path:<10} {side:<7}"
            for key, _, fmt in cols:
                if key not in f:
                    row += f"{'-':>24}"
                    continue
                cell = fmt.format(f[key])
                if path != "nginx" and key != "bytes_per_rw" and ng.get(key):
                    cell += f" ({ratio(f[key], ng[key]):.2f})"
                row += f"{cell:>24}"
            print(row)
    print("\nTargets per proxy (ratios to nginx's plaintext, same side):")
    for path in paths:
        if path not in OURS:
            continue
        for side in ("client", "server"):
            f = fig.get((path, side), {})
            ng = fig.get(("nginx", side), {})
            checks = []
            t = TARGETS.get((path, "instructions"))
            if t and "instructions" in f and ng.get("instructions"):
                r = ratio(f["instructions"], ng["instructions"])
                checks.append(f"instructions {r:.2f} <= {t} {'met' if r <= t else 'NOT met'}")
            for key, title in (("syscalls", "syscalls"), ("ctx", "ctx switches")):
                if key in f and ng.get(key):
                    r = ratio(f[key], ng[key])
                    checks.append(f"{title} {r:.2f} <= 1.0 {'met' if r <= 1.0 else 'NOT met'}")
            if path == "ours" and "allocations" in f:
                a = f["allocations"]
                checks.append(f"allocations {a:.2f} <= {ALLOC_TARGET} {'met' if a <= ALLOC_TARGET else 'NOT met'}")
            print(f"  {path:<10} {side:<7} " + "; ".join(checks))
    print("\nContext switches per request, voluntary + involuntary:")
    for path in paths:
        cells = []
        for side in ("client", "server"):
            f = fig.get((path, side), {})
            if "ctx" in f:
                cells.append(f"{side} {f['ctx_voluntary']:.3f} + {f['ctx_involuntary']:.3f}")
        if cells:
            print(f"  {path:<10} " + ", ".join(cells))
    print("\nSystem calls per request, by name:")
    for path in paths:
        for side in ("client", "server"):
            s = found.get((path, side), {}).get("strace")
            if s is None:
                continue
            calls = ", ".join(f"{k} {v / n:.2f}" for k, v in s.calls.most_common() if v / n >= 0.005)
            print(f"  {path:<10} {side:<7} {calls}")
    print("\nOur top 15 functions by inclusive instructions per request (% of the proxy's total;"
          " leaving out the frames every request runs under: main, the runtime's task poll),"
          " then the top 10 by their own instructions:")
    for path in paths:
        if path not in OURS:
            continue
        for side in ("client", "server"):
            cg = found.get((path, side), {}).get("callgrind")
            if cg is None:
                continue
            print(f"  {path} {side} ({cg.total / n:,.0f} per request):")
            inclusive = [(fn, c) for fn, c in cg.inclusive.most_common() if c < 0.965 * cg.total]
            for fn, cost in inclusive[:15]:
                print(f"    {cost / n:>10,.0f} {100 * cost / cg.total:5.1f}%  {fn[:110]}")
            print("    own:")
            for fn, cost in cg.self_cost.most_common(10):
                print(f"    {cost / n:>10,.0f} {100 * cost / cg.total:5.1f}%  {fn[:110]}")


def measure_ours(args):
    found = load(args.manifest)
    n = args.requests
    out = {}
    for side in ("client", "server"):
        m = found["ours", side]
        cg, st = m["callgrind"], m["strace"]
        out[side] = {
            "instructions": cg.total / n,
            "syscalls": st.total / n,
            "functions": {fn: c / n for fn, c in cg.self_cost.items()},
        }
    return out


def read_baseline(path):
    base = {"client": {"functions": {}}, "server": {"functions": {}}}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            side, kind, rest = line.rstrip("\n").split(" ", 2)
            if kind == "function":
                cost, fn = rest.split(" ", 1)
                base[side]["functions"][fn] = float(cost)
            else:
                base[side][kind] = float(rest)
    return base


def update(args):
    now = measure_ours(args)
    with open(args.baseline, "w", encoding="utf-8") as f:
        f.write("# Cost per request of mesh-proxy's plaintext sidecar pair, per proxy, counted by\n"
                "# scripts/bench-cost.sh --check: "
                f"{args.requests} keep-alive 1 KB POSTs over {args.conns} connection"
                f"{'' if args.conns == 1 else 's'} after\n"
                f"# {args.warmup} warm-up ones. Instructions are callgrind's, system calls strace's.\n"
                "# The check fails when a total is more than "
                f"{THRESHOLD:.0%} above its line here. Rewrite with\n"
                "# scripts/bench-cost.sh --update-baseline; the function lines (instructions per\n"
                "# request spent in each function itself) say where a change moved the cost.\n")
        for side in ("client", "server"):
            m = now[side]
            f.write(f"{side} instructions {m['instructions']:.0f}\n")
            f.write(f"{side} syscalls {m['syscalls']:.2f}\n")
        for side in ("client", "server"):
            m = now[side]
            top = sorted(m["functions"].items(), key=lambda kv: -kv[1])
            for fn, cost in top:
                if cost < 0.005 * m["instructions"]:
                    break
                f.write(f"{side} function {cost:.0f} {fn}\n")
    print_summary(now, read_baseline(args.baseline))


def print_summary(now, base):
    worse = []
    for side in ("client", "server"):
        for kind in ("instructions", "syscalls"):
            b, v = base[side].get(kind), now[side][kind]
            if b is None:
                worse.append(f"{side} {kind}: not in the baseline")
                continue
            change = ratio(v, b) - 1
            print(f"  {side} {kind} per request: {v:,.2f} (baseline {b:,.2f}, {change:+.1%})")
            if change > THRESHOLD:
                worse.append(f"{side} {kind} {change:+.1%}")
    return worse


def check(args):
    now = measure_ours(args)
    base = read_baseline(args.baseline)
    print("Cost per request of our plaintext pair against " + args.baseline + ":")
    worse = print_summary(now, base)
    if not worse:
        print(f"OK: nothing more than {THRESHOLD:.0%} above the baseline.")
        return 0
    print(f"\nFAILED: more than {THRESHOLD:.0%} above the baseline: " + "; ".join(worse))
    for side in ("client", "server"):
        b, v = base[side]["functions"], now[side]["functions"]
        names = set(b) | {fn for fn, c in v.items() if c >= 0.005 * now[side]["instructions"]}
        diffs = sorted(((v.get(fn, 0.0) - b.get(fn, 0.0), fn) for fn in names), key=lambda d: -abs(d[0]))
        print(f"\n  {side}: instructions per request spent in each function itself, now - baseline:")
        for d, fn in [d for d in diffs if abs(d[0]) >= 1][:15]:
            print(f"    {d:>+10,.0f}  ({b.get(fn, 0.0):>8,.0f} -> {v.get(fn, 0.0):>8,.0f})  {fn[:100]}")
    print("\nIf the change is intended, run scripts/bench-cost.sh --update-baseline and commit the diff.")
    return 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["report", "check", "update"])
    p.add_argument("--manifest", required=True)
    p.add_argument("--requests", type=int, required=True)
    p.add_argument("--warmup", type=int, required=True)
    p.add_argument("--conns", type=int, required=True)
    p.add_argument("--baseline")
    args = p.parse_args()
    if args.mode == "report":
        report(args)
        return 0
    if args.mode == "update":
        update(args)
        return 0
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
