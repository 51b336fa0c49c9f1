"""The team's app: a loop that connects to the database with the credentials OpenBao's agent renders
beside it, runs its statements and disconnects, once a round. It reads the rendered URL at every
connect, so credentials the agent renewed or replaced are used without a restart.

One JSON line per round on stdout: {"event": "query", "user", "ssl", "at"} when the statements ran (at:
seconds since the epoch), {"event": "error", ...} when they did not, {"event": "waiting"} while no
credentials are rendered yet; {"event": "started"} first. `app.py --ready` is its readiness: a round succeeded in the last 10 s.

Environment: DATABASE_URL_FILE (set by the agent's component), STATEMENTS (a JSON list), INTERVAL
(seconds between rounds).
"""

import json
import os
import signal
import sys
import threading
import time

#: Touched after each round that ran its statements.
LAST_OK = "/tmp/last-ok"
READY_WITHIN = 10


def ready() -> int:
    try:
        return 0 if time.time() - os.path.getmtime(LAST_OK) < READY_WITHIN else 1
    except OSError:
        return 1


def say(event: str, **fields) -> None:
    print(json.dumps({"event": event, "at": round(time.time(), 3), **fields}), flush=True)


def main() -> None:
    say("started")
    import psycopg

    url_file = os.environ.get("DATABASE_URL_FILE", "/vault/secrets/database-url")
    statements = json.loads(os.environ.get("STATEMENTS", '["SELECT 1"]'))
    interval = float(os.environ.get("INTERVAL", "1"))
    pod = os.environ.get("HOSTNAME", "")
    stop = threading.Event()
    # PID 1 ignores SIGTERM unless it handles it: end the loop at once, so the pod goes quickly.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        try:
            with open(url_file) as f:
                url = f.read().strip()
        except FileNotFoundError:
            say("waiting", file=url_file)
            stop.wait(0.2)
            continue
        try:
            with psycopg.connect(url, connect_timeout=5, application_name=pod) as conn:
                for statement in statements:
                    conn.execute(statement)
                user, ssl = conn.info.user, conn.pgconn.ssl_in_use
            with open(LAST_OK, "w"):
                pass
            say("query", user=user, ssl=ssl)
        except psycopg.Error as error:
            # libpq's messages name the user, never the password.
            say("error", error=type(error).__name__, detail=str(error).strip()[:300])
        stop.wait(interval)
    say("stopped")


if __name__ == "__main__":
    if sys.argv[1:] == ["--ready"]:
        sys.exit(ready())
    main()
