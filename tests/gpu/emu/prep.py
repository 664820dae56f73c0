#!/usr/bin/env python3
"""prep.py (EMULATION): rewrites kernel launches of a .cu file for the CPU emulation.

    name<<<grid, block, shmem, stream>>>(a, b);
becomes
    emu_launch(dim3(grid), dim3(block), stream, [emu_a0 = (a), emu_a1 = (b)]() { name(emu_a0, emu_a1); },
               barrier);
where barrier = 1 when the kernel's body calls __syncthreads or block_sum_d, directly or through
__device__ functions of the same file (it then runs as fibers). The arguments are evaluated and copied at the launch, as CUDA does, so that a launch
recorded into a graph (stream capture, emu.cpp) replays with its launch-time arguments after the
launching function's locals are gone. No stream argument: the legacy stream 0. Usage: prep.py IN.cu OUT.cpp
"""
import re
import sys


def match_close(s, i, open_ch, close_ch):
    """index of the bracket closing the one at s[i]"""
    depth = 0
    for j in range(i, len(s)):
        if s[j] == open_ch:
            depth += 1
        elif s[j] == close_ch:
            depth -= 1
            if depth == 0:
                return j
    raise SystemExit("prep.py: unbalanced %s at %d" % (open_ch, i))


def split_commas(s, opening, closing):
    """top-level comma split of s: the characters of opening/closing nest"""
    parts, depth, cur = [], 0, ""
    for c in s:
        if c in opening:
            depth += 1
        elif c in closing:
            depth -= 1
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    parts.append(cur)
    return [p.strip() for p in parts]


def split_top(s):
    """top-level comma split of a template or launch configuration: (), [], {} and <> nest"""
    return split_commas(s, "([{<", ")]}>")


def split_args(s):
    """top-level comma split of a call's arguments: only (), [] and {} nest (a < or > in an
    argument is a comparison or ->, not a bracket)"""
    return split_commas(s, "([{", ")]}")


def main():
    src = open(sys.argv[1]).read()
    # Functions that reach a barrier: __syncthreads, block_sum_d, and every __device__ function of
    # this file whose body calls one of them (to a fixed point).
    syncs = {"__syncthreads", "block_sum_d"}
    device = {}
    for m in re.finditer(r"__device__\s+(?:__forceinline__\s+)?\w+\s+(\w+)\s*\(", src):
        body_start = src.index("{", m.end())
        device[m.group(1)] = src[body_start:match_close(src, body_start, "{", "}") + 1]
    grew = True
    while grew:
        grew = False
        for name, body in device.items():
            if name not in syncs and any(re.search(r"\b%s\s*\(" % f, body) for f in syncs):
                syncs.add(name)
                grew = True
    barrier = {}
    for m in re.finditer(r"__global__\s+void\s+(\w+)\s*\(", src):
        body_start = src.index("{", m.end())
        body = src[body_start:match_close(src, body_start, "{", "}") + 1]
        barrier[m.group(1)] = int(any(re.search(r"\b%s\s*\(" % f, body) for f in syncs))
    out, pos = [], 0
    for m in re.finditer(r"(\w+)<<<", src):
        if m.start() < pos:
            continue
        name = m.group(1)
        cfg_end = src.index(">>>", m.end())
        cfg = split_top(src[m.end():cfg_end])
        args_open = cfg_end + 3
        while src[args_open].isspace():
            args_open += 1
        assert src[args_open] == "(", name
        args_close = match_close(src, args_open, "(", ")")
        args = src[args_open + 1:args_close]
        if name not in barrier:
            raise SystemExit("prep.py: launch of unknown kernel %s" % name)
        out.append(src[pos:m.start()])
        argv = [a for a in split_args(args) if a] if args.strip() else []
        caps = ", ".join("emu_a%d = (%s)" % (i, a) for i, a in enumerate(argv))
        call = ", ".join("emu_a%d" % i for i in range(len(argv)))
        stream = cfg[3] if len(cfg) >= 4 else "0"
        out.append("emu_launch(dim3(%s), dim3(%s), %s, [%s]() { %s(%s); }, %d)"
                   % (cfg[0], cfg[1], stream, caps, name, call, barrier[name]))
        pos = args_close + 1
    out.append(src[pos:])
    open(sys.argv[2], "w").write("".join(out))


main()
