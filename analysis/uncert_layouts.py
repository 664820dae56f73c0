"""Result layouts of hyperanalyze diversity, shift and calibrate for analysis/resultfile.py's checked
reader (registered here, beside the plot scripts that use them: plot_diversity.py, plot_shift.py,
plot_calibration.py), and the helpers those scripts share: legend labels and a checked savefig."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resultfile  # noqa: E402

SETS = ("generated", "baseline")


def _per_set(datasets):
    """datasets of /generated (required) and /baseline (optional, when the run had --baseline)."""
    req = {f"generated/{k}": v for k, v in datasets.items()}
    opt = {f"baseline/{k}": v for k, v in datasets.items()}
    return req, opt


_div = {k: ("float", 1) for k in ("disagreement", "kl_sym", "pair_error", "norm_disagreement", "error")}
_shift = {f"single/{s}_{w}": ("float", 1) for s in ("accuracy", "nll", "ece") for w in ("mean", "std")}
_shift.update({f"ensemble/{s}": ("float", 1) for s in ("accuracy", "nll", "ece")})
_cal = {"sizes": ("int", 1), "temperature": ("float", 1), "test/accuracy": ("float", 2), "test/nll": ("float", 2),
        "test/ece": ("float", 2), "reliability/count": ("float", 3), "reliability/confidence": ("float", 3),
        "reliability/accuracy": ("float", 3)}

for kind, per, extra, attrs, rel in (
        ("diversity", _div, {}, {"members": "int", "images": "int", "split": "str", "step": "int"},
         [("generated/pair_error", "generated/disagreement", 0)]),
        ("shift", _shift, {"angles": ("float", 1), "examples": ("float", 4)},
         {"members": "int", "images": "int", "step": "int"},
         [(f"generated/{k}", "angles", 0) for k in _shift]),
        ("calibrate", _cal, {"reliability_edges": ("float", 1)},
         {"members": "int", "test_images": "int", "val_images": "int", "step": "int"},
         [("generated/temperature", "generated/sizes", 0)])):
    req, opt = _per_set(per)
    req.update(extra)
    resultfile.LAYOUTS.setdefault(kind, (req, opt, attrs, rel))


def label(r, which, labels, j):
    """Legend label of set `which` of result j: --labels entry, else 'generated (step N)' / 'deep ensemble'."""
    if labels and j < len(labels):
        base = labels[j]
        return base if which == "generated" else f"{base}: deep ensemble"
    return f"generated (step {int(r.attrs['step'])})" if which == "generated" else "deep ensemble"


def parse_args(argv, doc, default_out):
    args = argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(doc.strip())
        sys.exit(0 if args else 2)
    out, labels = default_out, None
    if "-o" in args:
        i = args.index("-o")
        if i + 1 >= len(args):
            fail("-o needs a file name")
        out = args[i + 1]
        del args[i:i + 2]
    if "--labels" in args:
        i = args.index("--labels")
        if i + 1 >= len(args):
            fail("--labels needs a comma-separated list")
        labels = args[i + 1].split(",")
        del args[i:i + 2]
    for a in args:
        if a.startswith("-"):
            fail(f"unknown option '{a}'")
    if not args:
        fail("a result file is required")
    return args, out, labels


def fail(msg):
    print(f"{os.path.basename(sys.argv[0])}: error: {msg}", file=sys.stderr)
    sys.exit(1)


def save(fig, out):
    """fig.savefig(out); a failure is one line and exit status 1, never a traceback or a missing file."""
    try:
        fig.savefig(out, dpi=120)
    except (OSError, ValueError, RuntimeError) as e:
        fail(f"cannot write '{out}': {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    print(f"wrote {out}")
