"""A throwaway PostgreSQL cluster: initdb into a temporary folder, serve on a free loopback port, delete."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"
HOST = "127.0.0.1"
INSTALL_COMMAND = "apt-get install -y postgresql"
# Each test's database, the benchmark's ~20 clients and psql's own connection fit with room to spare;
# set explicitly because initdb otherwise picks a lower number when it finds little shared memory.
MAX_CONNECTIONS = 100
LOG_TAIL_LINES = 20
COMMAND_TIMEOUT_SECONDS = 60
DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class ClusterError(RuntimeError):
    """The cluster could not be set up, started, stopped, or given a database."""


def server_bindir() -> Path | None:
    """The folder of the server programs (`initdb`, `pg_ctl`), or None when none is installed."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            completed = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True
            )
            candidates.append(Path(completed.stdout.strip()))
    # Debian's pg_config may come from libpq-dev alone and name a bindir without the server in it.
    candidates += sorted(
        (Path(path) for path in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else -1,
        reverse=True,
    )
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def runuser_program() -> str | None:
    """The path of `runuser`, which root uses to run the server programs as `postgres`."""
    return shutil.which("runuser") or next(
        (path for path in ("/usr/sbin/runuser", "/sbin/runuser") if os.access(path, os.X_OK)), None
    )


def server_user() -> pwd.struct_passwd | None:
    """The `postgres` account, or None when there is none."""
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        return None


def unavailable_reason() -> str | None:
    """Why a throwaway cluster cannot be started on this machine, in one sentence; None when it can."""
    if server_bindir() is None:
        return (
            "no PostgreSQL server programs (initdb, pg_ctl) in `pg_config --bindir` or "
            f"/usr/lib/postgresql/*/bin: install them with `{INSTALL_COMMAND}`."
        )
    if os.geteuid() == 0:
        if server_user() is None:
            return (
                f"running as root, where initdb and pg_ctl refuse to run, and there is no `{SERVER_USER}` "
                f"user to run them as (`{INSTALL_COMMAND}` creates it)."
            )
        if runuser_program() is None:
            return (
                "running as root, where initdb and pg_ctl refuse to run, and there is no `runuser` "
                f"to run them as `{SERVER_USER}` (it comes with util-linux)."
            )
    return None


def free_port() -> int:
    """A loopback TCP port that is free now (the kernel's pick for port 0)."""
    # Another process may take it before the server binds it: the start then fails, its log saying so.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def clean_environment() -> dict[str, str]:
    """This process's environment without libpq's PG* variables, which would override our arguments."""
    return {name: value for name, value in os.environ.items() if not name.startswith("PG")}


@dataclass
class Cluster:
    """A running throwaway cluster: superuser `postgres`, trust authentication, loopback only."""

    port: int
    folder: Path
    bindir: Path
    start_seconds: float = 0.0
    stop_seconds: float | None = None
    # The words before a server program's own: `runuser -u postgres --` under root, none otherwise.
    server_user_prefix: Sequence[str] = ()

    @property
    def url(self) -> str:
        """The URL of the `postgres` maintenance database."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://{SERVER_USER}@{HOST}:{self.port}/{database}"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def create_database(self, name: str) -> str:
        """Create an empty database (from template0); its URL."""
        self.sql(f"CREATE DATABASE {checked_name(name)} TEMPLATE template0")
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any session still connected to it."""
        self.sql(f"DROP DATABASE IF EXISTS {checked_name(name)} WITH (FORCE)")

    def sql(self, statement: str) -> str:
        """Run one statement through psql on the maintenance database; what psql printed."""
        psql = self.bindir / "psql"
        program = str(psql) if psql.is_file() else shutil.which("psql") or "psql"
        command = [program, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.url, "-c", statement]
        completed = self.run(command, as_server_user=False)
        return completed.stdout

    def run(self, command: Sequence[str], *, as_server_user: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a program to its end; ClusterError with its output when it fails."""
        argv = [*self.server_user_prefix, *command] if as_server_user else list(command)
        try:
            completed = subprocess.run(
                argv,
                cwd=self.folder,  # root's working folder may be closed to the postgres user
                env=clean_environment(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as timeout:
            raise ClusterError(f"{shlex.join(argv)} took over {COMMAND_TIMEOUT_SECONDS} s") from timeout
        if completed.returncode != 0:
            output = (completed.stdout + completed.stderr).strip()
            raise ClusterError(f"{shlex.join(argv)} exited with {completed.returncode}: {output}")
        return completed

    def log_tail(self) -> str:
        """The last lines of the server log, or a note that there is none."""
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as error:
            return f"(no server log: {error})"
        return "\n".join(lines[-LOG_TAIL_LINES:])


def checked_name(name: str) -> str:
    """A database name that needs no quoting; ValueError for any other."""
    if not DATABASE_NAME.fullmatch(name):
        raise ValueError(f"database name {name!r} is not lower-case letters, digits and _ (at most 63)")
    return name


def make_folder() -> tuple[Path, list[str]]:
    """A new temporary folder owned by whoever runs the server; the prefix that runs a program as them."""
    folder = Path(tempfile.mkdtemp(prefix="ppk-pg-"))
    if os.geteuid() != 0:
        return folder, []
    user = server_user()
    runuser = runuser_program()
    if user is None or runuser is None:
        shutil.rmtree(folder)
        raise ClusterError(f"cannot start a cluster here: {unavailable_reason()}")
    os.chown(folder, user.pw_uid, user.pw_gid)
    return folder, [runuser, "-u", SERVER_USER, "--"]


@contextlib.contextmanager
def throwaway_cluster(settings: Mapping[str, str] | None = None) -> Iterator[Cluster]:
    """A fresh cluster, running for the body; stopped and deleted after it, even when it raised.

    `settings` are extra server settings (`-c name=value`); the server's durability settings are
    left as they are, because benchmarks measure real commits.
    """
    bindir = server_bindir()
    if bindir is None:
        raise ClusterError(f"cannot start a cluster here: {unavailable_reason()}")
    port = free_port()
    started = time.perf_counter()
    folder, prefix = make_folder()
    cluster = Cluster(port=port, folder=folder, bindir=bindir, server_user_prefix=prefix)
    server_settings = {
        "listen_addresses": HOST,
        "unix_socket_directories": str(folder),
        "max_connections": str(MAX_CONNECTIONS),
        **(settings or {}),
    }
    server_options = ["-p", str(port)]
    for name, value in server_settings.items():
        server_options += ["-c", f"{name}={value}"]
    data, log = str(cluster.data), str(cluster.log)
    # --no-sync spares initdb's own fsyncs only: the server itself keeps its default durability.
    initdb = [str(bindir / "initdb"), "--no-sync", "-A", "trust", "-U", SERVER_USER, "-E", "UTF8"]
    # pg_ctl hands -o to the server through /bin/sh, hence the shell quoting.
    pg_ctl = [str(bindir / "pg_ctl"), "-w", "-D", data, "-o", shlex.join(server_options), "-l", log]
    try:
        cluster.run([*initdb, "--locale=C", "-D", data])
        try:
            cluster.run([*pg_ctl, "start"])
        except ClusterError as error:
            raise ClusterError(f"{error}\nlast lines of the server log:\n{cluster.log_tail()}") from error
        cluster.start_seconds = time.perf_counter() - started
        yield cluster
    finally:
        stopping = time.perf_counter()
        try:
            stop(cluster)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        cluster.stop_seconds = time.perf_counter() - stopping


def stop(cluster: Cluster) -> None:
    """Stop the server if it was started: a fast shutdown, else an immediate one."""
    if not (cluster.data / "postmaster.pid").exists():
        return
    pg_ctl = str(cluster.bindir / "pg_ctl")
    try:
        cluster.run([pg_ctl, "-w", "-t", "30", "-D", str(cluster.data), "-m", "fast", "stop"])
    except ClusterError as fast:
        try:
            cluster.run([pg_ctl, "-w", "-t", "30", "-D", str(cluster.data), "-m", "immediate", "stop"])
        except ClusterError as immediate:
            raise ClusterError(f"the server would not stop: {fast}; then {immediate}") from immediate


def main() -> int:
    """Start and stop one cluster, and print how long each took (or why it cannot start here)."""
    reason = unavailable_reason()
    if reason is not None:
        print(f"unavailable: {reason}", file=sys.stderr)
        return 2
    with throwaway_cluster() as cluster:
        print(f"cluster {cluster.url} started in {cluster.start_seconds:.2f} s")
    print(f"stopped and deleted in {cluster.stop_seconds:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
