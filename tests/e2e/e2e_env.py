"""Plumbing for the end-to-end tests: a private copy of the machine's system
paths inside a mount namespace, the syslog listener, sshd, and running the
real programs (ssh, su, login) against the real libpam and glibc NSS.

Everything here runs inside `unshare --mount --propagation private` (see
test_e2e.py, which re-executes itself there).  Nothing on the host changes:

  * the scratch directory is a tmpfs mounted inside the namespace;
  * /etc, /var/lib, /var/log, /run and the multiarch library directory are
    overlay mounts whose upper layer lives in that tmpfs: every path of the
    machine stays readable, every write (pam.d, nsswitch.conf, passwd,
    shadow, ld.so.cache, /etc/medplum, /var/lib/pam_medplum, wtmp, btmp,
    lastlog, /run/sshd, utmp, the installed modules) stays private.  This is
    the bind-mount recipe of shared/test-infra.md section 4 generalised:
    bind mounts need an existing target, and the packaged stack needs paths
    the host does not have (/etc/medplum/pam_medplum.conf,
    /usr/lib/<multiarch>/security/pam_medplum.so, /var/lib/pam_medplum);
  * /home is a fresh tmpfs;
  * /dev is a private tmpfs with the usual character devices, a new devpts
    instance and our own /dev/log socket, so the host's /dev (a shared
    devtmpfs) never gets a /dev/log and a /dev/log someone else made is never
    touched or read.
When the namespace's last process exits the kernel drops every mount.
"""

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONVERSE = os.path.join(HERE, "converse.exp")
LOGIN_EXP = os.path.join(HERE, "login.exp")


def multiarch():
    try:
        out = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True).stdout
        if out.strip():
            return out.strip()
    except OSError:
        pass
    return "x86_64-linux-gnu"


LIBDIR = "/usr/lib/" + multiarch()
PAMDIR = LIBDIR + "/security"


def sh(cmd, check=True, **kw):
    """Runs a command (list), returns CompletedProcess with text output."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    proc = subprocess.run(cmd, **kw)
    if check and proc.returncode != 0:
        raise RuntimeError("%s -> rc %d\n%s%s" % (" ".join(cmd), proc.returncode,
                                                  proc.stdout or "", proc.stderr or ""))
    return proc


def mount(*args):
    sh(["mount"] + list(args))


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listen(port, timeout=5.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


class SyslogListener:
    """Receives datagrams on a socket bound to <dev>/log (later seen as
    /dev/log).  A thread of this process, so there is no process to leak."""

    def __init__(self, path, copy_file):
        self.path = path
        self.lines = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.settimeout(0.2)
        self.copy = open(copy_file, "ab", buffering=0)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.copy.write(data + b"\n")
            with self.lock:
                self.lines.append(data.decode("utf-8", "replace"))

    def mark(self):
        with self.lock:
            return len(self.lines)

    def since(self, mark):
        with self.lock:
            return list(self.lines[mark:])

    def all(self):
        with self.lock:
            return list(self.lines)

    def wait_for(self, mark, pred, timeout=1.5):
        """Lines since mark once pred(lines) holds (or after timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.since(mark)
            if pred(lines) or time.monotonic() > deadline:
                return lines
            time.sleep(0.02)

    def stop(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()
        self.copy.close()


# "<85>Dec  3 12:31:53 sshd[123]: pam_medplum(sshd:auth): user alice: accepted as ..."
DECISION_RE = re.compile(r"pam_medplum\((?P<service>[^:)]+):(?P<phase>\w+)\): "
                         r"user (?P<user>[^:\s]+): (?P<what>(?:account )?(?:accepted|denied|allowed|refused)"
                         r"|cannot authenticate|offline)")


def decisions(lines, user=None):
    out = []
    for line in lines:
        m = DECISION_RE.search(line)
        if m and (user is None or m.group("user") == user):
            out.append(line)
    return out


class System:
    """The private system inside the namespace."""

    def __init__(self, scratch):
        self.T = scratch
        self.started = []        # Popen objects we own (killed by PID at teardown)
        self.syslog = None

    def p(self, *parts):
        return os.path.join(self.T, *parts)

    # ---- mounts ---------------------------------------------------------------------------

    def overlay(self, path, name):
        up, work = self.p("ov", name, "upper"), self.p("ov", name, "work")
        os.makedirs(up)
        os.makedirs(work)
        mount("-t", "overlay", "overlay", "-o",
              "lowerdir=%s,upperdir=%s,workdir=%s" % (path, up, work), path)

    def private_dev(self):
        dev = self.p("dev")
        os.mkdir(dev)
        mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", dev)
        for name in sorted(os.listdir("/dev")):
            src, dst = "/dev/" + name, os.path.join(dev, name)
            try:
                st = os.lstat(src)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) and name not in ("ptmx",):
                os.mknod(dst, st.st_mode, st.st_rdev)
                os.chown(dst, st.st_uid, st.st_gid)
                os.chmod(dst, stat.S_IMODE(st.st_mode))
            elif stat.S_ISLNK(st.st_mode) and name not in ("ptmx", "log"):
                os.symlink(os.readlink(src), dst)
        os.mkdir(os.path.join(dev, "pts"))
        mount("-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=0620,gid=5", "devpts",
              os.path.join(dev, "pts"))
        os.symlink("pts/ptmx", os.path.join(dev, "ptmx"))
        os.mkdir(os.path.join(dev, "shm"), 0o1777)
        os.chmod(os.path.join(dev, "shm"), 0o1777)
        mount("-t", "tmpfs", "-o", "mode=1777", "tmpfs", os.path.join(dev, "shm"))
        self.syslog = SyslogListener(os.path.join(dev, "log"), self.p("logs", "syslog.txt"))
        mount("--rbind", dev, "/dev")

    def setup_mounts(self):
        mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", self.T)
        os.makedirs(self.p("logs"))
        self.private_dev()
        self.overlay("/etc", "etc")
        self.overlay("/var/lib", "varlib")
        self.overlay("/var/log", "varlog")
        self.overlay("/run", "run")
        self.overlay(LIBDIR, "libdir")
        mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/home")

    # ---- installation into the private system ------------------------------------------

    def install_modules(self, pam_so, nss_so):
        shutil.copyfile(pam_so, PAMDIR + "/pam_medplum.so")
        os.chmod(PAMDIR + "/pam_medplum.so", 0o644)
        if nss_so:
            shutil.copyfile(nss_so, LIBDIR + "/libnss_medplum.so.2")
            os.chmod(LIBDIR + "/libnss_medplum.so.2", 0o644)
            # -X: write the (private) /etc/ld.so.cache, never touch links.
            sh(["ldconfig", "-X"])

    def nsswitch(self, with_medplum):
        with open("/etc/nsswitch.conf") as f:
            text = f.read()
        src = "files medplum" if with_medplum else "files"
        text = re.sub(r"(?m)^passwd:.*$", "passwd:         " + src, text)
        text = re.sub(r"(?m)^group:.*$", "group:          " + src, text)
        text = re.sub(r"(?m)^shadow:.*$", "shadow:         files", text)
        text = re.sub(r"(?m)^gshadow:.*$", "gshadow:        files", text)
        with open("/etc/nsswitch.conf", "w") as f:
            f.write(text)

    def add_local_user(self, name, uid, password):
        with open("/etc/group", "a") as f:
            f.write("%s:x:%d:\n" % (name, uid))
        with open("/etc/passwd", "a") as f:
            f.write("%s:x:%d:%d:Local Admin:/home/%s:/bin/bash\n" % (name, uid, uid, name))
        with open("/etc/shadow", "a") as f:
            f.write("%s:!:19000:0:99999:7:::\n" % name)
        sh(["chpasswd"], input="%s:%s\n" % (name, password))
        os.makedirs("/home/" + name, 0o700)
        os.chown("/home/" + name, uid, uid)

    def write_pam(self, service, lines):
        with open("/etc/pam.d/" + service, "w") as f:
            f.write("# written by tests/e2e\n" + "\n".join(lines) + "\n")

    # ---- processes ------------------------------------------------------------------------

    def spawn(self, cmd, **kw):
        proc = subprocess.Popen(cmd, **kw)
        self.started.append(proc)
        return proc

    def stop(self, proc, sig=signal.SIGTERM):
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc in self.started:
            self.started.remove(proc)

    def teardown(self):
        for proc in list(self.started):
            self.stop(proc)
        if self.syslog:
            self.syslog.stop()


class Sshd:
    def __init__(self, system, pubkey=True):
        self.sys = system
        self.dir = system.p("sshd")
        os.makedirs(self.dir, exist_ok=True)
        self.hostkey = os.path.join(self.dir, "hostkey")
        if not os.path.exists(self.hostkey):
            sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.hostkey])
        os.chmod(self.hostkey, 0o600)
        self.log = system.p("logs", "sshd.log")
        self.proc = None
        self.port = None
        self.pubkey = pubkey

    def start(self):
        os.makedirs("/run/sshd", 0o755, exist_ok=True)   # private /run (overlay)
        for attempt in range(5):
            self.port = free_port()
            cfg = os.path.join(self.dir, "sshd_config")
            with open(cfg, "w") as f:
                f.write("\n".join([
                    "Port %d" % self.port,
                    "ListenAddress 127.0.0.1",
                    "HostKey " + self.hostkey,
                    "PidFile " + os.path.join(self.dir, "sshd.pid"),
                    "UsePAM yes",
                    "KbdInteractiveAuthentication yes",
                    "PasswordAuthentication yes",
                    "PubkeyAuthentication %s" % ("yes" if self.pubkey else "no"),
                    "AuthorizedKeysFile /etc/ssh/e2e_authorized_keys/%u",
                    "PermitRootLogin no",
                    "MaxAuthTries 3",
                    "LogLevel VERBOSE",
                    "PrintMotd no",
                    "UseDNS no",
                    ""]))
            sh(["/usr/sbin/sshd", "-t", "-f", cfg])
            logf = open(self.log, "a")
            self.proc = self.sys.spawn(["/usr/sbin/sshd", "-D", "-e", "-f", cfg],
                                       stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
            logf.close()
            if wait_listen(self.port, 5, self.proc):
                return
            self.sys.stop(self.proc)
        raise RuntimeError("sshd did not start; see " + self.log)

    def stop(self):
        self.sys.stop(self.proc)
        self.proc = None

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def log_size(self):
        return os.path.getsize(self.log)

    def log_since(self, offset):
        with open(self.log, errors="replace") as f:
            f.seek(offset)
            return f.read()

    def ssh_opts(self, method):
        opts = ["-F", "/dev/null", "-p", str(self.port),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "NumberOfPasswordPrompts=1",
                "-o", "ConnectTimeout=5", "-o", "BatchMode=no",
                "-o", "PreferredAuthentications=" + method]
        if method != "publickey":
            opts += ["-o", "PubkeyAuthentication=no"]
        return opts


class Run:
    def __init__(self, proc, elapsed):
        self.rc = proc.returncode
        self.out = (proc.stdout or "") + (proc.stderr or "")
        self.elapsed = elapsed

    def __repr__(self):
        return "rc=%s elapsed=%.2fs output=%r" % (self.rc, self.elapsed, self.out[-800:])


def timed(cmd, env=None, input=None, timeout=40):
    start = time.monotonic()
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, input=input,
                              timeout=timeout, errors="replace")
    except subprocess.TimeoutExpired as e:
        class P:
            returncode = "timeout"
            stdout = e.stdout.decode("utf-8", "replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            stderr = e.stderr.decode("utf-8", "replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        return Run(P, time.monotonic() - start)
    return Run(proc, time.monotonic() - start)


def converse(cmd, answers, as_user=None, timeout=25, shell=None, extra_env=None):
    """Runs cmd under expect in a pty, answering each password/code prompt with
    the next answer (passed through the environment, never argv); with shell,
    types that command line at the first shell prompt.  extra_env: variables
    the (unprivileged) caller sets, e.g. to attack a setuid program."""
    full = ["expect", "-f", CONVERSE, "--"] + cmd
    if as_user:
        full = ["runuser", "-u", as_user, "--"] + full
    env = {"E2E_ANSWERS": "\n".join(answers), "E2E_TIMEOUT": str(timeout)}
    env.update(extra_env or {})
    if shell:
        env["E2E_SHELL"] = shell
    return timed(full, env=env, timeout=timeout + 10)
