"""A private registry for tests: Debian's docker-registry (distribution 2.8.2) in a network namespace of its own,
on a veth to the host, optionally behind htpasswd (bcrypt) auth; images pushed to it with Debian's skopeo.

It stands for a registry on the internet: the host routes to it, so a task with a public IP reaches it
through its VPC router's NAT and the host's, and a task in a subnet with no way out does not. Its addresses
are in 198.18.0.0/15 (RFC 2544, benchmarking: never on the internet), and nothing here leaves the machine.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from tests.integration.docker_registry import bcrypt_hash

PORT = 5000


def sandbox_address(tag: str) -> tuple[str, str]:
    """(host end, registry end) of the /30 for a sandbox named `tag`: stable, so Fargo can be told in advance."""
    third = zlib.crc32(tag.encode()) % 250 + 1
    return f"198.18.{third}.1", f"198.18.{third}.2"


class RegistrySandbox:
    def __init__(self, tag: str, users: dict[str, str] | None = None) -> None:
        self.tag = tag
        self.netns = f"treg-{tag}"
        self.host_if, self.peer_if = f"treg{tag}h"[:15], f"treg{tag}p"[:15]
        self.host_ip, self.ip = sandbox_address(tag)
        self.address = f"{self.ip}:{PORT}"
        self.users = users or {}
        self.dir = Path(tempfile.mkdtemp(prefix=f"fargo-registry-{tag}-"))
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> RegistrySandbox:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.close_network()
        _ip("netns", "add", self.netns)
        _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.peer_if)
        _ip("link", "set", self.peer_if, "netns", self.netns)
        _ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        _ip("link", "set", self.host_if, "up")
        _ip("-n", self.netns, "addr", "add", f"{self.ip}/30", "dev", self.peer_if)
        _ip("-n", self.netns, "link", "set", self.peer_if, "up")
        _ip("-n", self.netns, "link", "set", "lo", "up")
        # Answers go back to whoever asked (the host masquerades tasks to its own end of the veth).
        _ip("-n", self.netns, "route", "add", "default", "via", self.host_ip)
        config = self.dir / "config.yml"
        auth = ""
        if self.users:
            lines = [f"{u}:{bcrypt_hash(p)}" for u, p in self.users.items()]
            (self.dir / "htpasswd").write_text("\n".join(lines) + "\n")
            auth = f"auth:\n  htpasswd:\n    realm: test-registry\n    path: {self.dir / 'htpasswd'}\n"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.dir / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.ip}:{PORT}\n{auth}")
        log = open(self.dir / "registry.log", "wb")
        self.process = subprocess.Popen(["ip", "netns", "exec", self.netns, "docker-registry", "serve", str(config)],
                                        stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1)
                return
            except urllib.error.HTTPError:
                return  # 401: up, with auth
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError(f"the test registry did not start: {(self.dir / 'registry.log').read_text()[-2000:]}")

    def push(self, source: str, repository: str, tag: str, *, all_platforms: bool = False) -> str:
        """Copy `source` (a skopeo transport:path) to repository:tag; returns the pushed manifest's digest."""
        reference = f"docker://{self.address}/{repository}:{tag}"
        creds = []
        if self.users:
            user, password = next(iter(self.users.items()))
            creds = ["--dest-creds", f"{user}:{password}"]
        digest_file = self.dir / "pushed-digest"
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", *creds,
                        *(["--all"] if all_platforms else []), "--digestfile", str(digest_file),
                        source, reference], check=True, capture_output=True, text=True,
                       env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(self.dir),
                            "REGISTRY_AUTH_FILE": str(self.dir / "auth.json")})
        return digest_file.read_text().strip()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self.close_network()
        shutil.rmtree(self.dir, ignore_errors=True)

    def close_network(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)
