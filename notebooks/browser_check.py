"""Open the notebooks in JupyterLab in headless Chromium, as a new user does.

Pass 1 opens each committed notebook and checks that its figures are
visible: as many rendered images in the output areas as the notebook file
holds image outputs. Pass 2 runs all cells (Run > Run All Cells), waits
until every cell has finished, times the `:dep` cell, and fails on any error
output or panic. Screenshots go to --screens.

The server must run with autosave off (browser_check.sh sets it), so the
committed outputs are never overwritten.

Usage: python browser_check.py --url URL --token T --screens DIR [--run] NOTEBOOK.ipynb ...
"""
import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service


def driver():
    opts = Options()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
              "--disable-dev-shm-usage"):
        opts.add_argument(a)
    opts.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def wait(what, cond, timeout, step=1.0):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def expected_images(path):
    nb = json.loads(Path(path).read_text())
    n = 0
    for c in nb["cells"]:
        for o in c.get("outputs", []):
            data = o.get("data", {})
            if "image/png" in data or "image/svg+xml" in data:
                n += 1
    return n


def rendered_images(d):
    return d.execute_script(
        "return [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img,"
        " .jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output svg')]"
        ".filter(e => (e.naturalWidth || e.getBoundingClientRect().width) > 0).length;")


def machine():
    """CPU model, SIMD flags, threads and load, as every timing artifact records."""
    import os
    import re
    cpu = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.*)", cpu)
    flags = sorted(set(re.findall(r"\b(avx2|avx512f|avx512ifma)\b", cpu)))
    return {"cpu": model.group(1).strip() if model else "unknown", "simd": flags,
            "threads": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}


def api(url, token, path, method="GET"):
    req = urllib.request.Request(f"{url}{path}?token={token}", method=method)
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
    return json.loads(body) if body else None


def shut_down_kernels(url, token):
    """End every session and make sure its kernel processes are gone, so that
    the next notebook's kernel gets the warm build folder (kernel.sh holds a
    lock on it for the kernel's lifetime, children included). Jupyter forgets
    a deleted kernel at once, but evcxr's processes can outlive it: the
    process group of each kernel is terminated explicitly."""
    import os
    import signal
    import subprocess
    ids = [k["id"] for k in api(url, token, "/api/kernels")]
    for s in api(url, token, "/api/sessions"):
        api(url, token, f"/api/sessions/{s['id']}", "DELETE")
    wait("the kernels to shut down", lambda: not api(url, token, "/api/kernels"), 60)
    for kid in ids:
        pids = subprocess.run(["pgrep", "-f", f"kernel-{kid}.json"], capture_output=True,
                              text=True).stdout.split()
        for pid in pids:
            try:
                # Its own process group (Jupyter starts kernels in a new session):
                # the group, children included; otherwise the process alone.
                if os.getpgid(int(pid)) == int(pid):
                    os.killpg(int(pid), signal.SIGTERM)
                else:
                    os.kill(int(pid), signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        wait(f"kernel {kid} to exit",
             lambda: not subprocess.run(["pgrep", "-f", f"kernel-{kid}.json"],
                                        capture_output=True).stdout, 30)
    time.sleep(2)


def cold_fallbacks(log):
    """How many kernels kernel.sh sent to a fresh (cold) folder so far."""
    if not log or not log.exists():
        return 0
    return log.read_text(errors="replace").count("is in use by another kernel")


def open_notebook(d, url, token, name):
    # `reset`: a fresh workspace. Without it JupyterLab restores every tab
    # opened before, and starts a kernel for each of those notebooks: the
    # first of them took the warm build folder's lock, and the kernel of
    # the notebook under test fell back to a cold folder.
    d.get(f"{url}/lab/tree/{name}?reset&token={token}")
    wait(f"{name} to open", lambda: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"), 120)
    # Kernel started (the status bar leaves "Starting" / "Connecting").
    time.sleep(3)


def check_figures(d, path, screens):
    want = expected_images(path)
    got = wait(f"{want} figures in {path.name}", lambda: (n := rendered_images(d)) >= want and n, 60) \
        if want else rendered_images(d)
    d.save_screenshot(str(screens / f"{path.stem}-opened.png"))
    first = d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img")
    if first:
        d.execute_script("arguments[0].scrollIntoView({block: 'center'});", first[0])
        time.sleep(1)
        d.save_screenshot(str(screens / f"{path.stem}-figure.png"))
    print(f"{path.name}: {got} of {want} figures rendered")
    return got >= want


def prompts(d):
    return d.execute_script(
        "return [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]"
        ".map(e => e.textContent.trim());")


def kernel_idle(d):
    return d.execute_script(
        "const w = window.jupyterapp.shell.currentWidget;"
        "const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
        "return !!k && k.status === 'idle';")


def ran(p):
    """A prompt of a finished cell: `[12]:`."""
    return p.startswith("[") and p[1:-2].isdigit()


def run_all(d, path, screens, timeout):
    # The command behind Run > Run All Cells (the server exposes the app).
    wait("the JupyterLab app", lambda: d.execute_script("return !!window.jupyterapp"), 30)
    wait("the kernel to be idle", lambda: kernel_idle(d), 120)
    # Clear the committed outputs first, so that only this run's prompts count.
    d.execute_script("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs');")
    wait("the outputs to clear", lambda: not any(ran(p) for p in prompts(d)), 30)
    start = time.time()
    d.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
    # The :dep cell is the fourth code cell (after :cache, :opt, the panic hook).
    dep_done = wait(":dep to finish", lambda: (p := prompts(d)) and len(p) > 3 and ran(p[3]) and time.time(), timeout)
    dep_s = dep_done - start
    # Done when nothing is queued or running any more (an error stops Run All:
    # the cells after it stay unrun and are counted below).
    wait("every cell to finish", lambda: "[*]:" not in prompts(d) and kernel_idle(d), timeout, step=5)
    total = time.time() - start
    errors = d.execute_script(
        "return [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output')]"
        ".map(e => e.textContent)"
        ".filter(t => /panicked at|error\\[E\\d+\\]|Error:/.test(t)).map(t => t.slice(0, 400));")
    d.execute_script("window.scrollTo(0, document.body.scrollHeight);")
    d.save_screenshot(str(screens / f"{path.stem}-ran.png"))
    unfinished = [p for p in prompts(d) if not ran(p)]
    print(f"{path.name}: ran in {total:.0f} s (:dep cell {dep_s:.0f} s); "
          f"{len(errors)} error output(s); {len(unfinished)} cell(s) not run")
    for e in errors:
        print("  error output:", e.replace("\n", " ")[:300])
    return not errors and not unfinished, dep_s, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--screens", required=True, type=Path)
    ap.add_argument("--run", action="store_true", help="also run all cells (pass 2)")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--server-log", type=Path, help="JupyterLab's log, to spot cold fallbacks")
    ap.add_argument("--timings", default="timings.json", help="file name of the timings in --screens")
    ap.add_argument("notebooks", nargs="+", type=Path)
    a = ap.parse_args()
    a.screens.mkdir(parents=True, exist_ok=True)
    m = machine()
    d = driver()
    ok = True
    timings = {}
    try:
        for p in a.notebooks:
            open_notebook(d, a.url, a.token, p.name)
            ok &= check_figures(d, p, a.screens)
            shut_down_kernels(a.url, a.token)
        if a.run:
            for p in a.notebooks:
                before = cold_fallbacks(a.server_log)
                open_notebook(d, a.url, a.token, p.name)
                good, dep_s, total = run_all(d, p, a.screens, a.timeout)
                timings[p.name] = {"dep_cell_s": round(dep_s, 1), "run_all_s": round(total, 1),
                                   "warm_folder": cold_fallbacks(a.server_log) == before}
                ok &= good
                shut_down_kernels(a.url, a.token)
    finally:
        d.quit()
    if a.run:
        (a.screens / a.timings).write_text(json.dumps({"machine": {**m, "load_average_end": machine()["load_average"]}, "notebooks": timings},
                                                           indent=1) + "\n")
    print("browser check:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
