"""Run the Vite frontend's nginx config (nginx.conf.template) on loopback with Debian's nginx.

The image (nginxinc/nginx-unprivileged) renders the template with envsubst, limited to
BACKEND_URL and UPLOAD_MAX_BODY_SIZE, into conf.d/ under an http block that includes
mime.types; `npm run build` writes the files the template includes from chatkit/. This does
the same in a temporary prefix: only the listen port and the document root differ, and those
two lines must be in the template as the image has them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

NGINX = os.environ.get("NGINX_PATH", "/usr/sbin/nginx")
MIME_TYPES = Path("/etc/nginx/mime.types")
IMAGE_LISTEN = "listen 8080;"
IMAGE_ROOT = "root /usr/share/nginx/html;"
# The image's defaults for the two variables its entrypoint fills in.
DEFAULT_UPLOAD_MAX_BODY_SIZE = "25m"


def require_nginx() -> str:
    """Debian's nginx (`apt-get install nginx-light`); SKIP_NGINX_TESTS=1 skips instead."""
    path = shutil.which(NGINX) or (NGINX if Path(NGINX).exists() else None)
    problem = None
    if path is None:
        problem = f"no nginx at {NGINX} (apt-get install -y nginx-light)"
    elif not MIME_TYPES.exists():
        problem = f"{MIME_TYPES} is missing (apt-get install -y nginx-common)"
    if problem:
        if os.environ.get("SKIP_NGINX_TESTS"):
            pytest.skip(f"SKIP_NGINX_TESTS is set: {problem}")
        pytest.fail(f"{problem}; set SKIP_NGINX_TESTS=1 to skip the nginx tests")
    assert path is not None
    return path


def render_template(text: str, variables: dict[str, str]) -> str:
    """envsubst restricted to `variables`, as the image's entrypoint runs it."""
    for name, value in variables.items():
        text = text.replace("${" + name + "}", value)
    return text


def server_config(frontend: Path, backend_url: str, port: int, root: Path) -> str:
    """The template as the container would run it, on 127.0.0.1:`port` serving `root`."""
    text = render_template(
        (frontend / "nginx.conf.template").read_text(),
        {"BACKEND_URL": backend_url, "UPLOAD_MAX_BODY_SIZE": DEFAULT_UPLOAD_MAX_BODY_SIZE},
    )
    for line in (IMAGE_LISTEN, IMAGE_ROOT):
        assert text.count(line) == 1, f"nginx.conf.template no longer has `{line}` once"
    text = text.replace(IMAGE_LISTEN, f"listen 127.0.0.1:{port};")
    return text.replace(IMAGE_ROOT, f"root {root};")


def main_config(prefix: Path, extra_main: str = "") -> str:
    """What the image's /etc/nginx/nginx.conf sets around conf.d/, with paths in `prefix`."""
    # Started as root (CI containers), workers would switch to nobody and lose the test's files.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / 'temp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{extra_main}{user}worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} notice;
events {{ worker_connections 256; }}
http {{
{temp}
    include {MIME_TYPES};
    default_type application/octet-stream;
    access_log {prefix / "access.log"};
    sendfile on;
    keepalive_timeout 65;
    include default.conf;
}}
"""


def nginx_command(
    frontend: Path,
    backend_url: str,
    port: int,
    prefix: Path,
    *,
    root: Path | None = None,
    extra_main: str = "",
    extra_server: str = "",
) -> list[str]:
    """Write the config into `prefix` and return the command that runs nginx in the foreground.

    `frontend` is a built frontend/ (with dist/ and the build's nginx/); `root` defaults to its
    dist/. `extra_main` goes before the main config (load_module lines), `extra_server` into
    the server block.
    """
    nginx = require_nginx()
    conf = prefix / "conf"
    (conf / "chatkit").mkdir(parents=True, exist_ok=True)
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "temp" / kind).mkdir(parents=True, exist_ok=True)
    generated = frontend / "nginx"
    assert generated.is_dir(), f"{generated} is missing: `npm run build` writes it"
    for path in generated.glob("*.conf"):
        shutil.copy(path, conf / "chatkit" / path.name)
    server = server_config(frontend, backend_url, port, root or frontend / "dist")
    if extra_server:
        server = server.replace("server {", "server {\n    " + extra_server, 1)
    (conf / "default.conf").write_text(server)
    (conf / "nginx.conf").write_text(main_config(prefix, extra_main))
    return [nginx, "-p", str(prefix), "-c", str(conf / "nginx.conf"), "-g", "daemon off;"]
