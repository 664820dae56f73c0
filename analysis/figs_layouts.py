"""Result layouts of hyperanalyze filterdiv and of pca's null comparisons for analysis/resultfile.py's
checked reader (registered here, beside the plot scripts that use them: plot_filters.py --diversity,
plot_pca.py, plot_paths.py), and the helpers those scripts share: option parsing that fails with
one line, a checked savefig."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resultfile  # noqa: E402

MAX_LAYERS = 64   # HT_MAX_OPS: layers 2.. of a filterdiv result are optional in the layout, then checked

_per_layer = {"diversity": ("float", 1), "next_norm": ("float", 1), "channel_msq": ("float", 2),
              "least/slices": ("float", 3), "most/slices": ("float", 3)}
resultfile.LAYOUTS.setdefault("filterdiv", (
    {f"layer1/{k}": v for k, v in _per_layer.items()},
    {f"layer{l}/{k}": v for l in range(2, MAX_LAYERS + 1) for k, v in _per_layer.items()},
    {"networks": "int", "samples_shown": "int", "layers": "int", "step": "int"},
    [("layer1/next_norm", "layer1/diversity", 0)]))

# pca: the comparison sets are optional (results written before them have none).
_req, _opt, _attrs, _rel = resultfile.LAYOUTS["pca"]
_opt = dict(_opt)
_opt.update({"gaussian/projections": ("float", 2), "baseline/projections": ("float", 2),
             "explained_variance": ("float", 1)})
resultfile.LAYOUTS["pca"] = (_req, _opt, _attrs, _rel)


def fail(msg, status=1):
    print(f"{os.path.basename(sys.argv[0])}: error: {msg}", file=sys.stderr)
    sys.exit(status)


def parse_args(argv, doc, default_out, flags=(), valued=()):
    """(positional files, out, {option: value or True}); -h prints doc. A missing value, an unknown
    option or no file: one line, exit status 2."""
    args = argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(doc.strip())
        sys.exit(0 if args else 2)
    out, opts, files = default_out, {}, []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-o" or a in valued:
            if i + 1 >= len(args):
                fail(f"{a} needs a value", 2)
            if a == "-o":
                out = args[i + 1]
            else:
                opts[a] = args[i + 1]
            i += 2
            continue
        if a in flags:
            opts[a] = True
        elif a.startswith("-"):
            fail(f"unknown option '{a}' (see --help)", 2)
        else:
            files.append(a)
        i += 1
    if not files:
        fail("a result file is required (see --help)", 2)
    if not out.endswith(".png"):
        fail(f"-o {out}: expected a .png file name", 2)
    return files, out, opts


def int_option(opts, name, default, lo):
    if name not in opts:
        return default
    try:
        v = int(opts[name])
    except ValueError:
        v = lo - 1
    if v < lo:
        fail(f"{name}: expected an integer >= {lo}, got '{opts[name]}'", 2)
    return v


def labels_option(opts, n):
    """--labels a,b,c (exactly n non-empty labels) or None."""
    if "--labels" not in opts:
        return None
    labels = opts["--labels"].split(",")
    if len(labels) != n or not all(labels):
        fail(f"--labels: expected {n} comma-separated labels, got '{opts['--labels']}'", 2)
    return labels


def save(fig, out):
    """fig.savefig(out); a failure is one line and exit status 1, never a traceback or a missing file."""
    try:
        fig.savefig(out, dpi=120)
    except (OSError, ValueError, RuntimeError) as e:
        fail(f"cannot write '{out}': {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    print(f"wrote {out}")
