#!/usr/bin/env python3
"""Reads a sweep description (JSON) for slurm/lambda-sweep.sbatch. Standard library only.

A sweep is one JSON object:

    {
      "name": "lambda",                 run names: <runs_dir>/<name>/<task>-lambda<value>
      "job": "jobs/mnist.json",         base job file (relative to the submit directory)
      "lambda": [1e2, 1e3, 1e4, 1e5],   one array task per value, in this order
      "set": {"steps": 4000, "data.train": 20000},   --set overrides for every task (optional)
      "runs_dir": "runs",               (optional, default "runs")
      "comment": "..."                  (optional, ignored)
    }

"set" values may be numbers, strings, booleans, lists or objects; objects are flattened to dotted
keys ({"data": {"train": 1000}} is --set data.train=1000), as hypertrain's --set expects.

    sweep.py check SWEEP          validate and print the tasks
    sweep.py count SWEEP          number of array tasks
    sweep.py task SWEEP I         task I: the run directory, then hypertrain's arguments, one a line
    sweep.py dirs SWEEP           every task's run directory, one a line
    sweep.py root SWEEP           <runs_dir>/<name>
"""
import json
import math
import os
import re
import sys

KEYS = {"name", "job", "lambda", "set", "runs_dir", "comment"}


class SweepError(Exception):
    pass


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise SweepError(f'duplicate key "{k}"')
        d[k] = v
    return d


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise SweepError(f"cannot read sweep file: {e.strerror}")
    try:
        s = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise SweepError(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}")
    if not isinstance(s, dict):
        raise SweepError("a sweep is a JSON object")
    unknown = sorted(set(s) - KEYS)
    if unknown:
        raise SweepError(f'unknown key "{unknown[0]}" (known: {", ".join(sorted(KEYS))})')
    for key in ("job", "lambda"):
        if key not in s:
            raise SweepError(f'missing key "{key}"')
    name = s.get("name", os.path.splitext(os.path.basename(path))[0])
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,62}", name):
        raise SweepError(f'key "name": expected 1-63 characters from A-Z a-z 0-9 . _ + - (not starting with .), got {json.dumps(name)}')
    if not isinstance(s["job"], str) or not s["job"]:
        raise SweepError('key "job": expected the path of a job file')
    lams = s["lambda"]
    if not isinstance(lams, list) or not lams:
        raise SweepError('key "lambda": expected a non-empty list of numbers > 0')
    for i, v in enumerate(lams):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise SweepError(f'key "lambda"[{i}]: expected a number > 0, got {json.dumps(v)}')
    sets = s.get("set", {})
    if not isinstance(sets, dict):
        raise SweepError('key "set": expected an object of job keys and values')
    flat = []
    _flatten("", sets, flat)
    for k, _ in flat:
        if k == "lambda":
            raise SweepError('key "set": "lambda" is the swept key; list its values in "lambda"')
    runs_dir = s.get("runs_dir", "runs")
    if not isinstance(runs_dir, str) or not runs_dir:
        raise SweepError('key "runs_dir": expected a directory')
    return {"name": name, "job": s["job"], "lambda": lams, "set": flat, "runs_dir": runs_dir}


def _flatten(prefix, obj, out):
    for k, v in obj.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            _flatten(key, v, out)
        else:
            out.append((key, v))


def fmt_lambda(v):
    """1000 -> '1000', 1e6 -> '1e6', 0.5 -> '0.5', 2.5e-05 -> '2.5e-5': short, file-name safe."""
    s = f"{float(v):g}"
    m = re.fullmatch(r"(-?[0-9.]+)e([+-])0*([0-9]+)", s)
    if m:
        s = f"{m.group(1)}e{'-' if m.group(2) == '-' else ''}{m.group(3)}"
    return s


def value_text(v):
    # Strings go bare (hypertrain takes a value that is not JSON as a string); the rest as JSON.
    return v if isinstance(v, str) else json.dumps(v)


def task(s, i):
    lam = s["lambda"][i]
    run_dir = os.path.join(s["runs_dir"], s["name"], f"{i}-lambda{fmt_lambda(lam)}")
    args = [s["job"]]
    for k, v in s["set"]:
        args += ["--set", f"{k}={value_text(v)}"]
    # An integral value as an integer, else repr(), which reads back exactly.
    lam_text = str(int(lam)) if float(lam).is_integer() and abs(lam) < 1e15 else repr(float(lam))
    args += ["--set", f"lambda={lam_text}"]
    return run_dir, args


def main(argv):
    if len(argv) < 3 or argv[1] not in ("check", "count", "task", "dirs", "root"):
        sys.stderr.write(__doc__)
        return 2
    cmd, path = argv[1], argv[2]
    try:
        s = load(path)
        n = len(s["lambda"])
        if cmd == "count":
            print(n)
        elif cmd == "root":
            print(os.path.join(s["runs_dir"], s["name"]))
        elif cmd == "dirs":
            for i in range(n):
                print(task(s, i)[0])
        elif cmd == "task":
            if len(argv) != 4 or not re.fullmatch(r"[0-9]+", argv[3]):
                raise SweepError("task needs a task index (the array task id)")
            i = int(argv[3])
            if i >= n:
                raise SweepError(f"task {i} does not exist: the sweep has {n} values of lambda "
                                 f"(submit with --array=0-{n - 1})")
            run_dir, args = task(s, i)
            print(run_dir)
            for a in args:
                print(a)
        else:
            if not os.path.isfile(s["job"]):
                raise SweepError(f'job file "{s["job"]}" not found (paths are relative to the submit directory)')
            print(f"sweep {s['name']}: {n} runs of {s['job']} (array 0-{n - 1})")
            for i in range(n):
                run_dir, args = task(s, i)
                print(f"  {i}: {run_dir}: hypertrain {' '.join(args)}")
    except SweepError as e:
        sys.stderr.write(f"sweep.py: error: {path}: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
