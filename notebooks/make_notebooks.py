"""Writes the five evcxr notebooks of this folder from their cell sources,
`examples/notebooks/<name>.rs`, which cargo compiles (`cargo build
--examples`): a library change that breaks a notebook breaks the build.

In a source, the body of `fn main` holds the cells: `// %% md` starts a
markdown cell (its lines are `// ` comments), `// %%` a code cell, and
`// %% setup` the set-up cells below, the same in every notebook. After
editing, regenerate and execute them (outputs are stored in the .ipynb
files):

    python3 notebooks/make_notebooks.py
    SLAF_HE_PROFILE=full bash notebooks/run.sh --write

Usage: python3 make_notebooks.py [--check]
  --check   exit 1 if a notebook's cell sources differ from its source file
"""
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = HERE.parent / "examples" / "notebooks"

SETUP_MD = (
    "**Set-up.** The next four cells are the same in every notebook: evcxr's "
    "compiled-dependency cache, optimised builds, a panic hook (so a failed "
    "`.expect` fails the cell), and the crate itself as the only dependency "
    "(`plotters`, `polars` and `ndarray` are re-exported by it).\n\n"
    "**The `:dep` cell compiles `slaf_he` and its dependencies.** After "
    "`bash notebooks/setup.sh` it reuses the prebuilt cache and takes about a "
    "minute; on a machine where set-up has not run, the first run compiles "
    "everything, which takes 8-13 minutes on 2 cores (the cell shows `[*]` "
    "meanwhile). `SLAF_HE_PROFILE=quick` (used by CI) trains for 1-2 epochs and "
    "encrypts a few images; the default `full` reuses the 30-epoch models "
    "committed under `results/training/` and runs the papers' protocol."
)

SETUP = [
    ("markdown", SETUP_MD),
    ("code", ":cache 4000"),
    ("code", ":opt 2"),
    (
        "code",
        "// A panic (or a failed .expect) must fail the cell, also in headless runs.\n"
        'std::panic::set_hook(Box::new(|i| { eprintln!("{i}"); std::process::exit(101); }));',
    ),
    ("code", ':dep slaf-he = { path = ".." }'),
]

MARK = re.compile(r"^\s*// %%( md| setup)?\s*$")


def parse(path):
    """The cells of one source file: [(kind, source)]."""
    lines = path.read_text().split("\n")
    try:
        start = next(i for i, l in enumerate(lines) if l.startswith("fn main()"))
        end = max(i for i, l in enumerate(lines) if l == "}")
    except (StopIteration, ValueError):
        raise SystemExit(f"{path}: no `fn main() {{ ... }}` holding the cells")
    cells, kind, buf = [], None, []

    def flush():
        if kind is None:
            return
        body = [l[4:] if l.startswith("    ") else l for l in buf]
        if kind == "markdown":
            body = [re.sub(r"^// ?", "", l.strip()) for l in body]
        text = "\n".join(body).strip("\n")
        if kind == "code" and text.endswith("}"):
            # A cell ending in a block (a loop, an if) would show `()`.
            text += ";"
        if text:
            cells.append((kind, text))

    for l in lines[start + 1 : end]:
        m = MARK.match(l)
        if m:
            flush()
            buf = []
            tag = m.group(1)
            if tag == " setup":
                cells.extend(SETUP)
                kind = None
            else:
                kind = "markdown" if tag == " md" else "code"
        elif kind is None:
            if l.strip():
                raise SystemExit(f"{path}: text outside a cell: {l.strip()!r}")
        else:
            buf.append(l)
    flush()
    return cells


NOTEBOOKS = {
    "CNN1_HE_SLAF.ipynb": "cnn1.rs",
    "CNN2_HE_SLAF.ipynb": "cnn2.rs",
    "Performance_accuracy_comparison_approaches.ipynb": "comparison.rs",
    "Interval_based_approximation_analysis.ipynb": "interval.rs",
    "Beyond_SLAF_study.ipynb": "beyond.rs",
}


def cell(kind, src):
    c = {"cell_type": kind, "metadata": {}, "source": src.splitlines(keepends=True)}
    if kind == "code":
        c["execution_count"] = None
        c["outputs"] = []
    return c


def notebook(cells):
    return {
        "cells": [cell(k, s) for k, s in cells],
        "metadata": {
            "kernelspec": {"display_name": "Rust", "language": "rust", "name": "rust"},
            "language_info": {
                "codemirror_mode": "rust",
                "file_extension": ".rs",
                "mimetype": "text/rust",
                "name": "Rust",
                "pygment_lexer": "rust",
                "version": "",
            },
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def sources(nb):
    return [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]]


def main(argv):
    check = "--check" in argv
    stale = []
    for name, src in NOTEBOOKS.items():
        nb = notebook(parse(SOURCES / src))
        path = HERE / name
        if check:
            old = json.loads(path.read_text()) if path.exists() else {"cells": []}
            if sources(old) != sources(nb):
                stale.append(name)
            continue
        if path.exists() and sources(json.loads(path.read_text())) == sources(nb):
            # Same cells: keep the stored outputs.
            continue
        for i, c in enumerate(nb["cells"]):
            c["id"] = f"c{i:03d}"
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {path}")
    if stale:
        print("notebooks differ from examples/notebooks/: " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
