"""Atomic writes and path handling that also work for Beam filesystems (gs://, s3://).

Local files are written to a temporary sibling, fsynced and renamed into place, so a killed
process never leaves a half-written file under the final name. Object stores (gs://, s3://)
only make an object visible when its upload completes, which gives the same guarantee.

Remote paths go through Beam's FileSystems, imported only when a remote path is used, so local
I/O never loads Beam. Their settings (S3 endpoint and credentials, GCP project) are Beam
pipeline options: the `webtext` command hands its `beam.options` and the arguments after `--`
to `use_options` before a command runs, and `check_remote` turns what makes a store unusable
(filesystem extra not installed, bucket missing, credentials refused, endpoint unreachable)
into a one-line error that names the path and the option to set, before any work starts.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import sys
import tempfile
from typing import IO, Iterator

# Schemes of the object stores webtext supports, and the webtext extra that installs each one's
# Beam filesystem.
REMOTE_EXTRAS = {"s3": "aws", "gs": "gcp"}
OPTIONS_HINT = "pass Beam options after `--` or in beam.options"

_beam_args: list[str] | None = None  # set by use_options; None: leave Beam's FileSystems as they are
_options_pending = False
_checked_buckets: set[tuple] = set()  # (scheme, bucket, options) that check_remote passed


def use_options(args: list[str]) -> None:
    """Beam pipeline options (`--s3_endpoint_url=...`, `--s3_access_key_id=...`, `--project=...`)
    for remote paths; handed to Beam's FileSystems when a remote path is first used (at once if
    Beam is already loaded), so a command on local paths never imports Beam."""
    global _beam_args, _options_pending
    _beam_args, _options_pending = list(args), True
    if "apache_beam.io.filesystems" in sys.modules:
        _filesystems()


def options() -> list[str] | None:
    """What `use_options` was given (None if it was not called), e.g. for worker processes."""
    return None if _beam_args is None else list(_beam_args)


def _filesystems():
    """Beam's FileSystems, imported only for a remote path: local I/O never loads Beam."""
    global _options_pending
    from apache_beam.io.filesystems import FileSystems

    if _options_pending:
        from apache_beam.options.pipeline_options import PipelineOptions

        _options_pending = False
        FileSystems.set_options(PipelineOptions(_beam_args))
    return FileSystems


def _uncompressed():
    """Beam's flag for bytes as they are: its default guesses a codec from the name (`.gz`)."""
    from apache_beam.io.filesystem import CompressionTypes

    return CompressionTypes.UNCOMPRESSED


def is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "wb") -> Iterator[IO]:
    """Open `path` for writing so that it appears complete or not at all."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports 'wb' and 'w', not {mode!r}")
    if not is_local(path):
        with _filesystems().create(path, compression_type=_uncompressed()) as raw:
            if mode == "w":
                import io

                with io.TextIOWrapper(raw, encoding="utf-8") as text:
                    yield text
            else:
                yield raw
        return
    path = _local(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


def join(base: str, *parts: str) -> str:
    return _filesystems().join(base, *parts) if not is_local(base) else os.path.join(_local(base), *parts)


def makedirs(path: str) -> None:
    if is_local(path):
        os.makedirs(_local(path), exist_ok=True)


def expand(patterns: list[str]) -> list[str]:
    """Expand paths, directories and globs (local or Beam filesystems) into sorted file paths.

    A directory gives every file below it except hidden ones (a name, or on an object store a
    folder of the prefix, starting with `.`, like a writer's `.staging/`)."""
    files: list[str] = []
    for pattern in patterns:
        if is_local(pattern) and os.path.isdir(_local(pattern)):
            for root, _dirs, names in os.walk(_local(pattern)):
                files.extend(os.path.join(root, n) for n in names if not n.startswith("."))
            continue
        matches = [path for path, _size in match(pattern)]
        if not matches and not is_local(pattern) and not _has_glob(pattern):
            prefix = pattern.rstrip("/") + "/"
            matches = [path for path, _size in match(prefix + "**")
                       if not any(part.startswith(".") for part in path[len(prefix):].split("/"))]
        if not matches:
            raise FileNotFoundError(f"no files match {pattern!r}")
        files.extend(matches)
    return sorted(set(files))


def _has_glob(path: str) -> bool:
    return any(char in path for char in "*?[")


# -- files on any filesystem: plain os calls for local paths, Beam's FileSystems for remote ones
def match(pattern: str) -> list[tuple[str, int]]:
    """(path, size) of every file matching the glob `pattern`, sorted by path."""
    if is_local(pattern):
        paths = [path for path in glob.glob(_local(pattern), recursive=True) if os.path.isfile(path)]
        return sorted((path, os.path.getsize(path)) for path in paths)
    found = _filesystems().match([pattern])[0].metadata_list
    return sorted((meta.path, meta.size_in_bytes) for meta in found)


def open_read(path: str) -> IO[bytes]:
    """A seekable binary reader of the file's bytes as stored."""
    if is_local(path):
        return open(_local(path), "rb")
    return _filesystems().open(path, compression_type=_uncompressed())


def read_bytes(path: str) -> bytes:
    with open_read(path) as fh:
        return fh.read()


def exists(path: str) -> bool:
    """Whether the file `path` exists."""
    return os.path.isfile(_local(path)) if is_local(path) else _filesystems().exists(path)


def isdir(path: str) -> bool:
    """Whether `path` is a folder: locally a directory, on an object store a prefix with objects."""
    if is_local(path):
        return os.path.isdir(_local(path))
    return bool(match(path.rstrip("/") + "/**"))


def size(path: str) -> int:
    if is_local(path):
        return os.path.getsize(_local(path))
    found = _filesystems().match([path])[0].metadata_list
    if not found:
        raise FileNotFoundError(f"{path}: not found")
    return found[0].size_in_bytes


def remove(path: str) -> None:
    """Delete the file `path` if it exists."""
    if is_local(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_local(path))
    elif exists(path):
        _filesystems().delete([path])


def remove_tree(path: str) -> None:
    """Delete the folder `path` and everything below it, if it exists (on an object store: every
    object under the prefix `path/`)."""
    if is_local(path):
        if os.path.isdir(_local(path)):
            shutil.rmtree(_local(path))
    elif isdir(path):
        _filesystems().delete([path.rstrip("/") + "/"])


def rename(source: str, destination: str) -> None:
    """Move a file into place (an object store copies, then deletes the source)."""
    if is_local(source) and is_local(destination):
        os.makedirs(os.path.dirname(os.path.abspath(_local(destination))), exist_ok=True)
        os.replace(_local(source), _local(destination))
    else:
        _filesystems().rename([source], [destination])


# -- fail fast, in one line, on an object store that cannot be used ------------------------------
def remote_paths(words: list[str]) -> list[str]:
    """The object-store paths among command-line words (`s3://...`, `--out=gs://...`)."""
    paths = []
    for word in words:
        value = word.split("=", 1)[1] if word.startswith("--") and "=" in word else word
        if value.split("://", 1)[0] in REMOTE_EXTRAS and "://" in value:
            paths.append(value)
    return paths


def check_remote(path: str) -> None:
    """Raise a one-line error naming `path` and what to set if its store cannot be used: the
    scheme's filesystem is not installed, or (S3) the bucket is missing, the credentials are
    refused or the endpoint does not answer. Beam itself would retry such failures for minutes
    and then report them several exceptions deep. Each bucket is checked once per set of options."""
    if is_local(path):
        return
    scheme, _, rest = path.partition("://")
    bucket = rest.split("/", 1)[0]
    checked = (scheme, bucket, tuple(_beam_args or ()))
    if checked in _checked_buckets:
        return
    extra = REMOTE_EXTRAS.get(scheme)
    install = f"pip install 'webtext[{extra}]'" if extra else "install its Beam filesystem"
    try:
        _filesystems().get_filesystem(path)
        if scheme == "s3":
            import boto3  # noqa: F401  Beam registers its S3 filesystem even without it
    except (ValueError, ImportError):
        raise ValueError(f"{path}: no filesystem for {scheme}:// paths is installed: {install}") from None
    if scheme == "s3":
        _check_s3_bucket(path, bucket)
    _checked_buckets.add(checked)


def _check_s3_bucket(path: str, bucket: str) -> None:
    """One HEAD request on the bucket with Beam's S3 options, retried twice at most."""
    import boto3
    import botocore.config
    import botocore.exceptions as errors
    from apache_beam.options.pipeline_options import PipelineOptions, S3Options

    s3 = PipelineOptions(_beam_args or []).view_as(S3Options)
    endpoint = s3.s3_endpoint_url or "AWS's default endpoint"
    client = boto3.session.Session().client(
        "s3", region_name=s3.s3_region_name, endpoint_url=s3.s3_endpoint_url, use_ssl=not s3.s3_disable_ssl,
        verify=s3.s3_verify, aws_access_key_id=s3.s3_access_key_id, aws_secret_access_key=s3.s3_secret_access_key,
        aws_session_token=s3.s3_session_token,
        config=botocore.config.Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=10))
    credentials = f"set --s3_access_key_id and --s3_secret_access_key ({OPTIONS_HINT})"
    try:
        client.head_bucket(Bucket=bucket)
    except errors.NoCredentialsError:
        raise ValueError(f"{path}: no S3 credentials found: {credentials}") from None
    except (errors.EndpointConnectionError, errors.ConnectTimeoutError) as exc:
        raise ValueError(f"{path}: cannot reach the S3 endpoint {endpoint} ({type(exc).__name__}): "
                         f"check --s3_endpoint_url ({OPTIONS_HINT})") from None
    except errors.ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = exc.response.get("Error", {}).get("Code", "?")
        if status == 404:
            raise FileNotFoundError(f"{path}: bucket {bucket!r} does not exist at {endpoint}: create it, or check "
                                    f"--s3_endpoint_url ({OPTIONS_HINT})") from None
        if status in (401, 403):
            raise ValueError(f"{path}: access to bucket {bucket!r} denied at {endpoint} (HTTP {status}): check "
                             f"the credentials: {credentials}") from None
        raise ValueError(f"{path}: S3 error {code} (HTTP {status}) at {endpoint}") from None
