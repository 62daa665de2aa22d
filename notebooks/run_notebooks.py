"""Execute the evcxr notebooks headless with nbclient and fail loudly.

nbclient's own CellExecutionError message omits the rustc error text, and an
evcxr cell whose code panicked may still be reported as successful, so this
runner prints the failing cell's outputs itself and also fails when a stderr
stream contains 'panicked at'.

On --write, every embedded PNG is recompressed losslessly (zlib level 9,
same pixels and filters) before the notebook is stored: the notebooks stay
small whatever the encoder of the kernel's build used.

Usage: python run_notebooks.py [--write | --recompress] NOTEBOOK.ipynb [...]
  --write        store the executed outputs back into the notebook files
  --recompress   only recompress the PNGs already stored (no execution)
"""
import base64
import struct
import sys
import time
import zlib

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def outputs_text(cell):
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") == "error":
            parts.append("\n".join(out.get("traceback", [])) or out.get("evalue", ""))
        elif "data" in out and "text/plain" in out["data"]:
            parts.append(out["data"]["text/plain"])
    return "".join(parts)


def recompress_png(data):
    """The same PNG with its image data in one IDAT chunk at zlib level 9."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return data
    chunks, i = [], 8
    while i + 8 <= len(data):
        (length,) = struct.unpack(">I", data[i:i + 4])
        chunks.append((data[i + 4:i + 8], data[i + 8:i + 8 + length]))
        i += 12 + length
    idat = b"".join(d for t, d in chunks if t == b"IDAT")
    packed = zlib.compress(zlib.decompress(idat), 9)
    if len(packed) >= len(idat):
        return data

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    out, done = [data[:8]], False
    for t, d in chunks:
        if t == b"IDAT":
            if not done:
                out.append(chunk(b"IDAT", packed))
                done = True
        else:
            out.append(chunk(t, d))
    return b"".join(out)


def recompress(nb):
    """Recompress every image/png output of `nb` in place."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            png = out.get("data", {}).get("image/png")
            if png:
                raw = base64.b64decode(png)
                out["data"]["image/png"] = base64.b64encode(recompress_png(raw)).decode()


def renumber(nb):
    """Execution counts 1, 2, 3, ... over the code cells in order (evcxr's
    own counter skips numbers for its `:` commands)."""
    n = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.get("execution_count") is None:
            continue
        n += 1
        cell["execution_count"] = n
        for out in cell.get("outputs", []):
            if "execution_count" in out:
                out["execution_count"] = n


def run(path, write):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="rust", timeout=3600, allow_errors=False,
                            resources={"metadata": {"path": str(__import__("pathlib").Path(path).parent)}})
    start = time.time()
    failed = None
    try:
        client.execute()
    except CellExecutionError as e:
        failed = str(e).splitlines()[0] if str(e) else "cell execution error"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr" \
                    and "panicked at" in out.get("text", ""):
                failed = failed or f"cell {i} panicked"
            if out.get("output_type") == "error":
                failed = failed or f"cell {i} raised an error"
        if failed and cell.get("outputs") and any(o.get("output_type") == "error" or
                                                  (o.get("name") == "stderr") for o in cell["outputs"]):
            print(f"--- {path}: cell {i} ---\n{cell.source}\n--- output ---\n{outputs_text(cell)}",
                  file=sys.stderr)
            break
    elapsed = time.time() - start
    renumber(nb)
    recompress(nb)
    if write and not failed:
        nbformat.write(nb, path)
    status = "FAILED: " + failed if failed else "ok"
    print(f"{path}: {status} ({elapsed:.0f} s)")
    return failed is None


def main(argv):
    write = "--write" in argv
    paths = [a for a in argv if a not in ("--write", "--recompress")]
    if "--recompress" in argv:
        for p in paths:
            nb = nbformat.read(p, as_version=4)
            recompress(nb)
            nbformat.write(nb, p)
            print(f"{p}: PNGs recompressed")
        return 0
    if not paths:
        print(__doc__)
        return 2
    ok = [run(p, write) for p in paths]
    print(f"{sum(ok)} passed, {len(ok) - sum(ok)} failed")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
