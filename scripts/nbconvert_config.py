# nbconvert configuration used by `npm run lessons` (scripts/lessons.ts):
#   jupyter nbconvert --config scripts/nbconvert_config.py --to notebook --execute ...
#
# The tslab kernel needs three things nbconvert does not do by itself:
# - it sends no execute_input message, so nbconvert leaves every execution_count
#   empty: it is taken here from the kernel's execute_reply;
# - a failing cell's message reaches only its stderr output, never the error
#   that nbconvert prints: it is printed here, with the cell's number;
# - nbconvert writes nothing when a cell fails: the notebook as far as it got
#   (the failing cell's message included) is written to $LESSONS_PARTIAL_OUTPUT.
# It also prints one line per executed cell, so that a long run shows progress.
import os
import sys
import time

import nbformat

c = get_config()  # noqa: F821 (defined by traitlets when it loads this file)

_started = {}
_notebook = []  # the notebook being executed (nbclient's own object, filled in as cells run)
_label = os.environ.get("LESSONS_LABEL", "lessons")


def _say(text):
    print(f"[{_label}] {text}", file=sys.stderr, flush=True)


def _first_line(cell):
    for line in cell.source.splitlines():
        if line.strip():
            return line.strip()[:100]
    return ""


def on_notebook_start(notebook):
    _notebook[:] = [notebook]


def on_cell_execute(cell, cell_index):
    _started[cell_index] = time.monotonic()


def on_cell_executed(cell, cell_index, execute_reply):
    count = execute_reply.get("content", {}).get("execution_count")
    if cell.get("execution_count") is None and isinstance(count, int):
        cell["execution_count"] = count
    seconds = time.monotonic() - _started.get(cell_index, time.monotonic())
    status = execute_reply.get("content", {}).get("status", "?")
    _say(f"cell {cell_index} [{cell.get('execution_count')}] {status} in {seconds:.1f} s: {_first_line(cell)}")


def on_cell_error(cell, cell_index, execute_reply):
    stderr = "".join(
        o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr"
    )
    content = execute_reply.get("content", {})
    message = stderr.strip() or f"{content.get('ename', '')}: {content.get('evalue', '')}".strip(": ")
    # Marks the cell in the notebook written below (tslab's compile errors do not say "Error").
    cell.setdefault("metadata", {})["lessons"] = {"status": "error"}
    _say(f"cell {cell_index} FAILED: {_first_line(cell)}")
    for line in (message or "(the kernel gave no message)").splitlines()[:40]:
        _say(f"  {line}")
    path = os.environ.get("LESSONS_PARTIAL_OUTPUT")
    if path and _notebook:
        nbformat.write(_notebook[0], path)
        _say(f"the notebook as far as it ran: {path}")


c.ExecutePreprocessor.on_notebook_start = on_notebook_start
c.ExecutePreprocessor.on_cell_execute = on_cell_execute
c.ExecutePreprocessor.on_cell_executed = on_cell_executed
c.ExecutePreprocessor.on_cell_error = on_cell_error
