"""A real S3-compatible server for the tests: moto's standalone server on 127.0.0.1.

`S3Server.start()` runs `python -m moto.server` on a free loopback port, creates an IAM user
with an access key and a bucket, then switches the server's authentication on: from then on
only that key is accepted, so a test can also see what wrong credentials do. A test reaches
the bucket with `beam_args` (the S3 options, after `--` on the `webtext` command line), `env`
(boto's AWS_* variables instead) or `client()` (boto3, for setting up and checking objects).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REGION = "us-east-1"
BUCKET = "webtext-test"
# Credentials for the set-up calls made before authentication is switched on (moto accepts any).
SETUP_KEY, SETUP_SECRET = "setup", "setup"
STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class S3Server:
    process: subprocess.Popen
    endpoint: str
    access_key: str = ""
    secret_key: str = ""
    bucket: str = BUCKET
    log: Path | None = None

    @classmethod
    def start(cls, log: Path) -> "S3Server":
        port = free_port()
        with open(log, "wb") as sink:
            process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                       stdout=sink, stderr=subprocess.STDOUT)
        server = cls(process, f"http://127.0.0.1:{port}", log=log)
        try:
            server._wait_ready()
            server._set_up()
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited ({self.process.returncode}): {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto server not answering on {self.endpoint}") from None
                time.sleep(0.1)

    def _set_up(self) -> None:
        """A user allowed everything on S3, its access key, the bucket; then authentication on."""
        iam = self._boto("iam", SETUP_KEY, SETUP_SECRET)
        iam.create_user(UserName="webtext")
        iam.put_user_policy(UserName="webtext", PolicyName="s3", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }))
        key = iam.create_access_key(UserName="webtext")["AccessKey"]
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        self._boto("s3", SETUP_KEY, SETUP_SECRET).create_bucket(Bucket=self.bucket)
        request = urllib.request.Request(self.endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
                                         headers={"Content-Type": "text/plain"})  # a form body reads as empty
        with urllib.request.urlopen(request, timeout=10):
            pass

    def _boto(self, service: str, key: str, secret: str):
        import boto3

        return boto3.session.Session().client(service, region_name=REGION, endpoint_url=self.endpoint,
                                              aws_access_key_id=key, aws_secret_access_key=secret)

    def client(self):
        """boto3 S3 client with the server's valid credentials."""
        return self._boto("s3", self.access_key, self.secret_key)

    def url(self, *parts: str) -> str:
        """`s3://BUCKET/parts...`."""
        return "/".join([f"s3://{self.bucket}", *parts])

    def options(self, access_key: str | None = None, secret_key: str | None = None,
                endpoint: str | None = None) -> list[str]:
        """Beam's S3Options for this server (the valid key unless others are given)."""
        return [
            f"--s3_endpoint_url={endpoint or self.endpoint}",
            f"--s3_access_key_id={access_key or self.access_key}",
            f"--s3_secret_access_key={secret_key or self.secret_key}",
            f"--s3_region_name={REGION}",
        ]

    @property
    def env(self) -> dict[str, str]:
        """boto's own variables for this server: the other way to configure S3 than Beam options."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL_S3": self.endpoint}

    @property
    def beam_args(self) -> list[str]:
        """`--` plus the options: what a `webtext` command line ends with to reach the bucket."""
        return ["--", *self.options()]

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under `prefix` in the bucket, sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def get(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def upload_tree(self, local: Path, prefix: str) -> None:
        """Copy every file under `local` to `s3://BUCKET/prefix/...` (same relative names)."""
        client = self.client()
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            client.upload_file(str(path), self.bucket, f"{prefix}/{path.relative_to(local).as_posix()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
