"""Start the Medplum test server for a test and stop it afterwards.

    import sys; sys.path.insert(0, "tests/server")
    from harness import MedplumTestServer
    with MedplumTestServer(fixture="tests/server/fixtures/lab.json") as srv:
        srv.base_url          # "https://127.0.0.1:PORT/"
        srv.ca_file           # CA that signed the server certificate
        srv.other_ca_file     # an unrelated CA
        srv.set_fault("hang", path_prefix="/auth/login"); srv.reset()
        srv.requests()        # request log entries (dicts)
        srv.control.post("/membership", email="bob@example.com", active=True)

Certificates go to a fresh temporary directory; the server process is killed by PID on exit.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from control import Control  # noqa: E402

DEFAULT_FIXTURE = os.path.join(HERE, "fixtures", "lab.json")


def make_certs(directory):
    subprocess.run(["sh", os.path.join(HERE, "make_certs.sh"), directory], check=True)


class MedplumTestServer:
    def __init__(self, fixture=DEFAULT_FIXTURE, variant="5.0.10", http=False, host="127.0.0.1",
                 rate_limit_auth=None, extra_args=(), python=sys.executable, workdir=None):
        self.fixture = fixture
        self.variant = variant
        self.http = http
        self.host = host
        self.rate_limit_auth = rate_limit_auth
        self.extra_args = list(extra_args)
        self.python = python
        self.workdir = workdir
        self.proc = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self._own_dir = self.workdir is None
        self.dir = self.workdir or tempfile.mkdtemp(prefix="medplum-test-")
        self.ca_file = os.path.join(self.dir, "ca.pem")
        self.other_ca_file = os.path.join(self.dir, "other-ca.pem")
        if not self.http and not os.path.exists(os.path.join(self.dir, "server.pem")):
            make_certs(self.dir)
        self.port_file = os.path.join(self.dir, "port")
        self.control_port_file = os.path.join(self.dir, "control-port")
        self.log_file = os.path.join(self.dir, "requests.jsonl")
        self.stderr_file = os.path.join(self.dir, "server.stderr")
        for path in (self.port_file, self.control_port_file):
            if os.path.exists(path):
                os.unlink(path)
        cmd = [self.python, os.path.join(HERE, "medplum_server.py"), "--fixture", self.fixture,
               "--host", self.host, "--port", "0", "--port-file", self.port_file,
               "--control-port-file", self.control_port_file, "--request-log", self.log_file,
               "--variant", self.variant]
        if self.http:
            cmd.append("--http")
        else:
            cmd += ["--cert", os.path.join(self.dir, "server.pem"),
                    "--key", os.path.join(self.dir, "server.key")]
        if self.rate_limit_auth is not None:
            cmd += ["--rate-limit-auth", str(self.rate_limit_auth)]
        cmd += self.extra_args
        self._stderr = open(self.stderr_file, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL)
        first_line = self.proc.stdout.readline().decode().strip()
        if not first_line.isdigit():
            self.stop()
            with open(self.stderr_file) as f:
                raise RuntimeError("test server did not start: %s" % f.read())
        self.port = int(first_line)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.control_port_file):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("test server wrote no control port")
            time.sleep(0.01)
        self.control = Control.from_port_file(self.control_port_file)
        scheme = "http" if self.http else "https"
        host = "[%s]" % self.host if ":" in self.host else self.host
        self.base_url = "%s://%s:%d/" % (scheme, host, self.port)
        return self

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc.stdout.close()
            self._stderr.close()
            self.proc = None
        if getattr(self, "_own_dir", False) and os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- convenience wrappers around the control port --------------------------------------------
    def set_fault(self, mode, **options):
        return self.control.fault(mode, **options)

    def reset(self):
        return self.control.reset()

    def clear_log(self):
        return self.control.clear_log()

    def requests(self):
        return self.control.log()

    def set_time_offset(self, seconds):
        return self.control.post("/time", offset=seconds)
