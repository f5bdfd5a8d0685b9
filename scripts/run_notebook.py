"""Executes one lesson notebook in the tslab kernel, then signs the executed copy as trusted and
exports its HTML report, all in one Python process (each `jupyter` command pays about 4 s of
imports on a 2-core VM). `npm run lessons` (scripts/lessons.ts) runs it once per notebook:

    .venv/bin/python scripts/run_notebook.py NOTEBOOK --kernel NAME --timeout S \
        --executed OUT.ipynb --partial OUT.failed.ipynb --html OUT.html --label NAME

The tslab kernel needs three things nbclient does not do by itself:
- it sends no execute_input message, so nbclient leaves every execution_count empty: it is taken
  here from the kernel's execute_reply;
- a failing cell's message reaches only its stderr output, never the error nbclient raises: it is
  printed here, with the cell's number;
- nothing is written when a cell fails: the notebook as far as it got (the failing cell's message
  included) is written to --partial.
It prints one line per executed cell, so that a long run shows progress; every line it prints
starts with [LABEL].

Exit code: 0 when the notebook ran and its report was written, 1 when it failed (--partial holds
it as far as it ran, if a cell had started), 2 for bad arguments.
"""
import argparse
import os
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter
from nbformat.sign import NotebookNotary


def first_line(cell):
    for line in cell.source.splitlines():
        if line.strip():
            return line.strip()[:100]
    return ""


class Progress:
    """nbclient's hooks: progress lines, execution counts, and the failing cell's message."""

    def __init__(self, label, partial):
        self.label = label
        self.partial = partial
        self.notebook = None
        self.started = {}

    def say(self, text):
        print(f"[{self.label}] {text}", file=sys.stderr, flush=True)

    def on_notebook_start(self, notebook):
        self.notebook = notebook

    def on_cell_execute(self, cell, cell_index):
        self.started[cell_index] = time.monotonic()

    def on_cell_executed(self, cell, cell_index, execute_reply):
        content = execute_reply.get("content", {})
        count = content.get("execution_count")
        if cell.get("execution_count") is None and isinstance(count, int):
            cell["execution_count"] = count
        seconds = time.monotonic() - self.started.get(cell_index, time.monotonic())
        self.say(f"cell {cell_index} [{cell.get('execution_count')}] {content.get('status', '?')} in {seconds:.1f} s: {first_line(cell)}")

    def on_cell_error(self, cell, cell_index, execute_reply):
        stderr = "".join(
            o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr"
        )
        content = execute_reply.get("content", {})
        message = stderr.strip() or f"{content.get('ename', '')}: {content.get('evalue', '')}".strip(": ")
        # Marks the cell in the partial notebook (tslab's compile errors do not say "Error").
        cell.setdefault("metadata", {})["lessons"] = {"status": "error"}
        self.say(f"cell {cell_index} FAILED: {first_line(cell)}")
        for line in (message or "(the kernel gave no message)").splitlines()[:40]:
            self.say(f"  {line}")
        self.write_partial()

    def write_partial(self):
        if self.notebook is not None and not os.path.exists(self.partial):
            nbformat.write(self.notebook, self.partial)
            self.say(f"the notebook as far as it ran: {self.partial}")


def main():
    parser = argparse.ArgumentParser(description="Execute a lesson notebook, sign it, export its HTML report.")
    parser.add_argument("notebook")
    parser.add_argument("--kernel", required=True)
    parser.add_argument("--timeout", type=int, required=True, help="seconds one cell may run")
    parser.add_argument("--executed", required=True)
    parser.add_argument("--partial", required=True)
    parser.add_argument("--html", required=True)
    parser.add_argument("--label", required=True)
    args = parser.parse_args()

    progress = Progress(args.label, args.partial)
    notebook = nbformat.read(args.notebook, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=args.kernel,
        timeout=args.timeout,
        startup_timeout=120,
        # Output still arriving after a cell's reply (thousands of lines) is waited for, up to a
        # minute, and output that never arrives fails the run instead of vanishing (nbclient's
        # default: 4 s, then silence).
        iopub_timeout=60,
        raise_on_iopub_timeout=True,
        # The kernel runs in the notebook's folder, where its ./lib/... imports are.
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(args.notebook))}},
        on_notebook_start=progress.on_notebook_start,
        on_cell_execute=progress.on_cell_execute,
        on_cell_executed=progress.on_cell_executed,
        on_cell_error=progress.on_cell_error,
    )
    progress.say(f"executing {args.notebook} in the {args.kernel} kernel")
    try:
        client.execute()
    except CellExecutionError:
        return 1  # on_cell_error said which cell, and why
    except Exception as e:  # the kernel died, would not start, or a cell ran out of time
        progress.say(f"FAILED: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}")
        progress.write_partial()
        return 1
    nbformat.write(notebook, args.executed)
    NotebookNotary().sign(notebook)
    body, _ = HTMLExporter().from_notebook_node(notebook, resources={"metadata": {"name": args.label}})
    with open(args.html, "w", encoding="utf-8") as f:
        f.write(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
