"""What the privline-tunnel test (tests/tunnel/tunnel_test.py) and its
benchmark (benches/tunnel/bench.py) share: free ports, processes started
with a log and stopped at the end, a tunnel end's listening port, and nginx
as a backend. Python standard library only; everything on 127.0.0.1.
"""

import re
import signal
import socket
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"
PROCS = []  # every process started by start(), for stop_all()


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def wait_port(port, timeout=20.0):
    """Whether something accepts connections on `port` within `timeout`."""
    def up():
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            return False
    return wait_for(up, timeout, 0.05)


def start(cmd, log_path, env=None, cwd=None, user=None):
    """Starts `cmd` (as `user` when given) with stdout and stderr to
    `log_path`; stop_all() stops it at the end."""
    log = open(log_path, "wb")
    if user is not None:
        cmd = ["runuser", "-u", user, "--"] + [str(c) for c in cmd]
    proc = subprocess.Popen([str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, cwd=cwd)
    log.close()
    PROCS.append(proc)
    return proc


def stop(proc, sig=signal.SIGTERM, timeout=10.0):
    """Sends `sig` and waits; kills the process if it has not ended by then."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def stop_all(sig=signal.SIGTERM):
    for proc in PROCS:
        stop(proc, sig)


def listening_port(log_text):
    """The port of a tunnel end's "listening 127.0.0.1:PORT" line, or None."""
    m = re.search(r"^listening 127\.0\.0\.1:(\d+)", log_text, re.M)
    return int(m.group(1)) if m else None


def write_nginx_conf(root, port, worker_connections, keepalive_requests=None):
    """nginx.conf in `root` (a directory that also holds www/, the files
    served, and tmp/): one worker, serving www/ on HOST:`port` with
    sendfile, no access log, everything under `root`. Returns its path."""
    root = Path(root)
    (root / "tmp").mkdir(exist_ok=True)
    keepalive = f"    keepalive_requests {keepalive_requests};\n" if keepalive_requests else ""
    conf = root / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log;
daemon off;
events {{ worker_connections {worker_connections}; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
{keepalive}    server {{ listen {HOST}:{port}; root {root}/www; sendfile on; }}
}}
""")
    return conf


def start_nginx(root, log_path):
    """nginx with the configuration write_nginx_conf wrote in `root`."""
    return start(["nginx", "-c", Path(root) / "nginx.conf", "-p", root, "-e", Path(root) / "error.log"], log_path)
