"""The app caps glibc's malloc arenas (demo.cap_malloc_arenas): 16 threads allocating at once share 2 arenas
instead of getting one each. Counted by glibc itself (malloc_info), in a fresh interpreter each way."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import ctypes, sys, tempfile, threading
if sys.argv[1] == "cap":
    from dqngan.ui.demo import cap_malloc_arenas
    assert cap_malloc_arenas()
libc = ctypes.CDLL("libc.so.6")
barrier = threading.Barrier(16)

def work():
    barrier.wait()
    for _ in range(2000):
        del [bytearray(200) for _ in range(50)][:]

threads = [threading.Thread(target=work) for _ in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile("r") as out:
    f = ctypes.c_void_p(libc.fopen(out.name.encode(), b"w"))
    libc.malloc_info(0, f)
    libc.fclose(f)
    print(out.read().count("<heap nr="))
"""


def arenas(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", CHILD, mode], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**env, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_cap_malloc_arenas():
    assert arenas("cap") <= 2 < arenas("nocap")
