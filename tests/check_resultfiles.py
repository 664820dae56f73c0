#!/usr/bin/env python3
"""check_resultfiles.py: every result file of hyperanalyze is self-describing (issue #14).

usage: check_resultfiles.py FILE.h5 [FILE.h5 ...]

Each file must carry, at its root, the provenance attributes
  command       "hyperanalyze NAME"
  tool_version  a non-empty version string
  command_line  the full command line, starting with "hyperanalyze NAME"
  <role>_sha256 for each input: the SHA-256 (64 hex digits) of the input, next to <role> = its path;
                "samples" (the input sample set) for every command that reads one, "job_file" for
                hyperanalyze baseline (which reads a job, not a sample set), and "baseline" when the
                file records one
and every dataset must carry non-empty string attributes "axes" and "meaning". The SHA-256 of each
input is recomputed from the file it names when that file exists. Prints one line per file; exit 1
naming the file, the object and the missing or bad attribute on the first problem of any file.
"""
import hashlib
import os
import re
import sys

import h5py


def text(v):
    return v.decode() if isinstance(v, bytes) else v


def check(path):
    problems = []
    with h5py.File(path, "r") as f:
        a = {k: text(f.attrs[k]) for k in f.attrs}
        for k in ("command", "tool_version", "command_line"):
            if not isinstance(a.get(k), str) or not a[k]:
                problems.append(f"root attribute {k!r} is missing or empty")
        cmd = a.get("command", "")
        if isinstance(cmd, str) and not re.fullmatch(r"hyperanalyze [a-z]+", cmd):
            problems.append(f"root attribute 'command' is {cmd!r}, expected 'hyperanalyze NAME'")
        if isinstance(cmd, str) and isinstance(a.get("command_line"), str) and not a["command_line"].startswith(cmd):
            problems.append(f"command_line {a['command_line'][:60]!r} does not start with {cmd!r}")
        role = "job_file" if cmd == "hyperanalyze baseline" else "samples"
        roles = [role] + (["baseline"] if "baseline_sha256" in a and a.get("baseline") else [])
        for r in roles:
            sha = a.get(r + "_sha256")
            if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
                problems.append(f"root attribute {r + '_sha256'!r} must be 64 hex digits, got {sha!r}")
            elif isinstance(a.get(r), str) and os.path.isfile(a[r]):
                got = hashlib.sha256(open(a[r], "rb").read()).hexdigest()
                if got != sha:
                    problems.append(f"{r}_sha256 {sha[:12]}... is not the SHA-256 of {a[r]} ({got[:12]}...)")
        n = 0

        def visit(name, obj):
            nonlocal n
            if not isinstance(obj, h5py.Dataset):
                return
            n += 1
            for k in ("axes", "meaning"):
                v = text(obj.attrs[k]) if k in obj.attrs else None
                if not isinstance(v, str) or not v.strip():
                    problems.append(f"dataset /{name} has no {k!r} attribute")
        f.visititems(visit)
        if n == 0:
            problems.append("no datasets")
    return cmd, n, problems


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    bad = 0
    for path in argv[1:]:
        try:
            cmd, n, problems = check(path)
        except OSError as e:
            print(f"check_resultfiles.py: error: cannot read result file '{path}': {e}")
            bad = 1
            continue
        if problems:
            bad = 1
            print(f"check_resultfiles.py: error: result file '{path}' ({cmd}): {problems[0]}"
                  + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
        else:
            print(f"{path}: {cmd}: provenance and axes/meaning on all {n} datasets")
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv))
