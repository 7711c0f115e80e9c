"""A Debian `docker-registry` (distribution 2.8.2) on a free loopback port, for pull tests and the pull benchmark:
anonymous, htpasswd (bcrypt through the C library's crypt) or token auth; images pushed with Debian's skopeo;
its access log read back to count what a pull asked for.
"""
from __future__ import annotations

import re
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # the C library's bcrypt: no bcrypt package is installed (and pip is not for tests)

REGISTRY_BINARY = "/usr/bin/docker-registry"
_ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) \d+ "[^"]*" "(?P<agent>[^"]*)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bcrypt_hash(password: str) -> str:
    alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    salt = "".join(secrets.choice(alphabet) for _ in range(22))
    hashed = crypt.crypt(password, f"$2b$05${salt}")  # type: ignore[attr-defined]
    assert hashed and hashed.startswith("$2b$"), "the C library's crypt has no bcrypt"
    return hashed


@dataclass(frozen=True)
class Access:
    method: str
    path: str
    status: int
    agent: str


@dataclass(frozen=True)
class TokenAuth:
    """distribution's token auth: the realm it sends clients to, and the certificate bundle its tokens chain to."""

    realm: str
    service: str
    issuer: str
    rootcertbundle: Path


class LocalRegistry:
    def __init__(self, root: Path, *, users: dict[str, str] | None = None, token: TokenAuth | None = None) -> None:
        self.root, self.users, self.token = root, users, token
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log_path = root / "registry.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> LocalRegistry:
        self.root.mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.users is not None:
            htpasswd = self.root / "htpasswd"
            htpasswd.write_text("".join(f"{u}:{bcrypt_hash(p)}\n" for u, p in self.users.items()))
            auth = f"auth:\n  htpasswd:\n    realm: fargo-test\n    path: {htpasswd}\n"
        elif self.token is not None:
            auth = (f"auth:\n  token:\n    realm: {self.token.realm}\n    service: {self.token.service}\n"
                    f"    issuer: {self.token.issuer}\n    rootcertbundle: {self.token.rootcertbundle}\n")
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.address}\n" + auth
        )
        log = open(self.log_path, "ab")
        self._process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1).close()
                return self
            except urllib.error.HTTPError:
                return self  # 401: up, and asking for credentials
            except OSError:
                if self._process.poll() is not None:
                    raise RuntimeError(f"docker-registry exited: {self.log_path.read_text()[-2000:]}")
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not start within 15 s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def push(self, archive: Path, repository: str, *, all_platforms: bool = False,
             credentials: tuple[str, str] | None = None) -> None:
        """Copy an OCI-layout tarball to `repository` (`name:tag`) with skopeo."""
        command = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--preserve-digests"]
        command += ["--all"] if all_platforms else []
        command += ["--dest-creds", f"{credentials[0]}:{credentials[1]}"] if credentials else []
        command += [f"oci-archive:{archive}", f"docker://{self.address}/{repository}"]
        subprocess.run(command, check=True, capture_output=True, timeout=300)

    def accesses(self, agent_prefix: str = "containerd/") -> list[Access]:
        """The requests logged so far whose User-Agent starts with `agent_prefix` (Fargo's puller says containerd/)."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            match = _ACCESS.search(line)
            if match and match.group("agent").startswith(agent_prefix):
                out.append(Access(match.group("method"), match.group("path"), int(match.group("status")),
                                  match.group("agent")))
        return out

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
