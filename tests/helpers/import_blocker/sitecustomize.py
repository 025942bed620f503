"""Makes every top-level module outside the standard library and $IMPORT_ALLOWLIST unimportable, for a process
that must run with only some packages installed (the vLLM image has vLLM's dependencies, not ours).

Python imports this at start-up when its folder is on PYTHONPATH. The top-level modules the process really
imported are written to $IMPORT_RECORD at exit (or just before an exec), so a test can see what was used.
"""

from __future__ import annotations

import atexit
import importlib.machinery
import os
import sys

_ALLOWED = {name for name in os.environ.get("IMPORT_ALLOWLIST", "").split(",") if name}
# The interpreter's own library folders (for modules such as _sysconfigdata_* that stdlib_module_names omits).
_STDLIB_DIRS = [os.path.dirname(os.__file__), os.path.join(os.path.dirname(os.__file__), "lib-dynload")]


def _allowed(top: str) -> bool:
    if top in sys.stdlib_module_names or top in _ALLOWED or top.startswith("__editable__"):
        return True
    return importlib.machinery.PathFinder.find_spec(top, _STDLIB_DIRS) is not None


class _Refuse:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if _allowed(top):
            return None
        raise ModuleNotFoundError(f"No module named {top!r} (not installed in the image)", name=top)


sys.meta_path.insert(0, _Refuse())
for _name in [n for n in sys.modules if not _allowed(n.partition(".")[0])]:
    del sys.modules[_name]


@atexit.register
def _record() -> None:
    if record := os.environ.get("IMPORT_RECORD"):
        tops = {name.partition(".")[0] for name in sys.modules} - {"sitecustomize", "__main__"}
        # _cython_* and cython_runtime are the shared runtime Cython extensions (PyYAML's _yaml) register under their own name.
        third_party = sorted(t for t in tops if not t.startswith(("__editable__", "_cython_", "cython_runtime"))
                             and t not in sys.stdlib_module_names
                             and importlib.machinery.PathFinder.find_spec(t, _STDLIB_DIRS) is None)  # fmt: skip
        with open(record, "w", encoding="utf-8") as out:
            out.write("\n".join(third_party))


_execve = os.execve


def _record_then_execve(path, args, env):
    """exec replaces the process before atexit runs: record first."""
    _record()
    return _execve(path, args, env)


os.execve = _record_then_execve
