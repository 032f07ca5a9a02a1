"""A signal whose exception Python drops (raised inside a weakref callback, as the import system's
module locks have) is neither printed nor lost: the next commit point raises it again."""

import subprocess
import sys
import textwrap

from conftest import ROOT

DROPPED = """
import os, signal, weakref
from bptrain import interrupts
interrupts.install()

class Thing:
    pass

def callback(ref):
    os.kill(os.getpid(), signal.{signal})  # the handler's Signalled is raised here, and dropped

thing = Thing()
ref = weakref.ref(thing, callback)
del thing
print("still running", flush=True)
"""


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_a_dropped_signal_is_silent_and_stops_the_next_atomic_write(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    code = DROPPED.format(signal="SIGINT") + f"""
from bptrain.fileio import atomic_write_text
try:
    atomic_write_text({str(target)!r}, "new\\n")
except interrupts.Signalled as e:
    print("raised:", e)
"""
    result = run(code)
    assert result.stderr == ""  # not "Exception ignored in: <function callback ...>"
    assert result.stdout == "still running\nraised: interrupted by SIGINT\n"
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temp file left


def test_a_dropped_signal_ends_the_command_with_its_exit_code():
    code = DROPPED.format(signal="SIGTERM") + """
from bptrain.cli import errors_to_exit_codes
import typer
try:
    with errors_to_exit_codes():
        print("the command's work is done", flush=True)
except typer.Exit as e:
    print("exit", e.exit_code)
"""
    result = run(code)
    assert result.stdout == "still running\nthe command's work is done\nexit 143\n"
    assert result.stderr == "error: terminated by SIGTERM; nothing was written\n"


def test_other_dropped_exceptions_are_still_printed():
    code = """
import weakref
from bptrain import interrupts
interrupts.install()

class Thing:
    pass

def callback(ref):
    raise ValueError("a bug in a callback")

thing = Thing()
ref = weakref.ref(thing, callback)
del thing
"""
    result = run(code)
    assert "ValueError: a bug in a callback" in result.stderr


def test_a_signal_while_a_model_file_opens_stops_it_without_a_half_made_zipfile(tmp_path):
    """SIGTERM handled inside ZipFile.__init__ after it has opened the model file and before it has
    set its attributes: without held() the half-made ZipFile prints an AttributeError when collected."""
    model = tmp_path / "model.npz"
    code = f"""
import functools, gc, os, signal, types, zipfile
import numpy as np
from bptrain import interrupts
from bptrain.runs.npzfile import NpzReader
interrupts.install()
np.savez({str(model)!r}, w=np.zeros(3))
# ZipFile.__init__ makes its lock right after opening the file: a C call that sends the signal
# there has the handler run in __init__ itself, as a signal during the open would
zipfile.threading = types.SimpleNamespace(RLock=functools.partial(os.kill, os.getpid(), signal.SIGTERM))
try:
    NpzReader({str(model)!r}, 2**20)
except interrupts.Signalled as e:
    print("raised:", e)
gc.collect()
"""
    result = run(code)
    assert result.stderr == ""  # not "Exception ignored in: <function ZipFile.__del__ ...>"
    assert result.stdout == "raised: terminated by SIGTERM\n"


def test_a_signal_inside_held_is_raised_when_the_block_ends():
    code = """
import os, signal
from bptrain import interrupts
interrupts.install()
try:
    with interrupts.held():
        os.kill(os.getpid(), signal.SIGINT)
        with interrupts.held():
            os.kill(os.getpid(), signal.SIGTERM)
        print("the inner block ended")
        print("the outer block ends")
except interrupts.Signalled as e:
    print("raised:", e)
"""
    result = run(code)
    assert result.stderr == ""
    assert result.stdout == "the inner block ended\nthe outer block ends\nraised: terminated by SIGTERM\n"
