"""pytest set-up shared by every test.

Device tests (``tests/device/test_*.py``) are written once and collected twice:
``test_x[cpython]`` runs in this interpreter, ``test_x[micropython]`` runs the same
function under the unix-port MicroPython in a subprocess (one per test, so each one
shows by name, has its own timeout and cannot poison the next).
"""

import ast
import asyncio
import importlib
import os
import subprocess
import sys
from pathlib import Path

import ci
import pytest

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "lib"
DEVICE_DIR = ROOT / "tests" / "device"
VENV_BIN = Path(sys.executable).parent
DEVICE_TIMEOUT = 120

for p in (str(LIB), str(DEVICE_DIR), str(ROOT / "host")):
    if p not in sys.path:
        sys.path.insert(0, p)


def micropython_exe():
    """Path of the unix-port MicroPython; a missing one fails in CI, never skips."""
    for cand in (VENV_BIN / "micropython", Path(os.environ.get("MICROPYTHON", "/nonexistent"))):
        if cand.exists():
            return str(cand)
    from shutil import which

    found = which("micropython")
    if found:
        return found
    ci.require(False, "micropython executable not found (run `make setup`)")


def micropython_env(extra_path=()):
    """Environment for a MicroPython subprocess: lib/ and tests/device/ importable."""
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([*map(str, extra_path), str(LIB), str(DEVICE_DIR), ".frozen"])
    return env


def _test_functions(path):
    tree = ast.parse(path.read_text())
    return [
        n.name
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test_")
    ]


class DeviceModule(pytest.File):
    def collect(self):
        for name in _test_functions(self.path):
            for runtime in ("cpython", "micropython"):
                yield DeviceItem.from_parent(self, name="%s[%s]" % (name, runtime), func=name, runtime=runtime)


class DeviceItem(pytest.Item):
    def __init__(self, *, func, runtime, **kw):
        super().__init__(**kw)
        self.func = func
        self.runtime = runtime

    def runtest(self):
        module = self.path.stem
        if self.runtime == "cpython":
            mod = importlib.import_module(module)
            result = getattr(mod, self.func)()
            if asyncio.iscoroutine(result):
                asyncio.run(asyncio.wait_for(result, DEVICE_TIMEOUT))
            return
        exe = micropython_exe()
        try:
            proc = subprocess.run(
                [exe, str(DEVICE_DIR / "_runner.py"), module, self.func],
                capture_output=True,
                text=True,
                timeout=DEVICE_TIMEOUT,
                env=micropython_env(),
                cwd=str(DEVICE_DIR),
            )
        except subprocess.TimeoutExpired as e:
            raise DeviceTestFailure("timed out after %ss\n%s" % (DEVICE_TIMEOUT, e.stdout or ""))
        out = proc.stdout + proc.stderr
        if proc.returncode != 0 or "DEVTEST-PASS" not in proc.stdout:
            raise DeviceTestFailure("MicroPython exit %s:\n%s" % (proc.returncode, out))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, DeviceTestFailure):
            return str(excinfo.value)
        # Show only frames of the test and the library, not pytest's own machinery.
        excinfo.traceback = excinfo.traceback.filter(
            lambda entry: str(DEVICE_DIR) in str(entry.path) or str(LIB) in str(entry.path)
        )
        return excinfo.getrepr(style="long")

    def reportinfo(self):
        return self.path, None, "%s::%s" % (self.path.name, self.name)


class DeviceTestFailure(Exception):
    pass


def pytest_pycollect_makemodule(module_path, parent):
    if module_path.parent == DEVICE_DIR and module_path.name.startswith("test_"):
        return DeviceModule.from_parent(parent, path=module_path)
    return None


@pytest.fixture(scope="session")
def micropython():
    """Path of the unix-port `micropython` executable."""
    return micropython_exe()


_CERT_DIR = []


def make_test_certs():
    """A throwaway CA and a localhost/127.0.0.1 cert (PEM and DER), made once per run.

    Exposed to device tests (both runtimes) through MICROWS_TEST_CERTS.
    """
    if _CERT_DIR:
        return _CERT_DIR[0]
    import tempfile

    import trustme
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    d = Path(tempfile.mkdtemp(prefix="microws-certs-"))
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    cert.private_key_pem.write_to_path(str(d / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(d / "cert.pem"))
    # MicroPython's ssl loads DER most reliably; write both.
    key = serialization.load_pem_private_key((d / "key.pem").read_bytes(), None)
    (d / "key.der").write_bytes(
        key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    crt = x509.load_pem_x509_certificate((d / "cert.pem").read_bytes())
    (d / "cert.der").write_bytes(crt.public_bytes(serialization.Encoding.DER))
    os.environ["MICROWS_TEST_CERTS"] = str(d)
    _CERT_DIR.append(d)
    return d


def pytest_sessionstart(session):
    make_test_certs()


def pytest_sessionfinish(session):
    import shutil

    for d in _CERT_DIR:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def device_test_certs():
    """Directory with ca.pem, cert.pem, key.pem, cert.der, key.der (see make_test_certs)."""
    return make_test_certs()
