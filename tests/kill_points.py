"""Runs ``experiments.quickstart`` (command-line flags pass through) with markers at the places
a kill test aims at, printed to stdout:

- ``KILLPOINT save <step>``: a checkpoint save was just dispatched (Orbax writes it in the
  background, so a kill now lands during the save);
- ``KILLPOINT metrics-rewrite``: the resumed run wrote the new ``metrics.jsonl`` but has not yet
  renamed it over the old one; the process then waits to be killed.
"""

import runpy
import sys
import time

from jaxvision.train import checkpoint, writers

_save = checkpoint.Checkpointer.save
_write = getattr(writers, "write_text_atomic", None)  # absent before the atomic rewrite


def save(self, step, *args, **kwargs):
    _save(self, step, *args, **kwargs)
    print(f"KILLPOINT save {step}", flush=True)


def write_text_atomic(path, text):
    import os

    real_replace = os.replace

    def paused_replace(src, dst):
        print("KILLPOINT metrics-rewrite", flush=True)
        time.sleep(60)
        real_replace(src, dst)

    os.replace = paused_replace
    try:
        _write(path, text)
    finally:
        os.replace = real_replace


checkpoint.Checkpointer.save = save
if "--pause-rewrite" in sys.argv:
    sys.argv.remove("--pause-rewrite")
    writers.write_text_atomic = write_text_atomic
sys.argv[0] = "quickstart"
runpy.run_module("experiments.quickstart", run_name="__main__", alter_sys=True)
