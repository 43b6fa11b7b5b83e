"""Where an experiment lives: a local directory or a cloud URI (``s3://``, ``gs://``).

Ray Tune and Ray Train write to either through pyarrow's file systems; lightsweep reads and
writes its own files (the leaderboard, checkpoint accounting, the shared-storage marker) through
the same ones, so a URI that Ray accepts, with the credentials Ray finds (``AWS_*`` variables,
an instance profile, ``GOOGLE_APPLICATION_CREDENTIALS``), works for every command.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from tuning.record.files import atomic_write_bytes

# The schemes of pyarrow's file systems, which Ray Tune and Train write through.
CLOUD_SCHEMES = ("s3", "gs", "gcs", "hdfs", "abfs", "abfss")


READ_ATTEMPTS = 5


@functools.lru_cache(maxsize=16)
def _filesystem(scheme: str, bucket: str) -> pafs.FileSystem:
    # One client per bucket: making one resolves credentials and the region, which is slow.
    fs, _ = pafs.FileSystem.from_uri(f"{scheme}://{bucket}")
    return fs


@dataclass(frozen=True)
class Location:
    """A file or directory, local or in cloud storage.

    Attributes:
        uri: An absolute POSIX path, or ``scheme://bucket/key`` without a trailing slash.
    """

    uri: str

    @classmethod
    def parse(cls, text: str | Path | Location) -> Location:
        """A location from what a user typed: a path (made absolute) or a URI."""
        if isinstance(text, Location):
            return text
        text = str(text)
        if "://" not in text:
            return cls(Path(text).expanduser().absolute().as_posix())
        parts = urlsplit(text)
        if parts.scheme == "file":
            return cls(Path(parts.path).absolute().as_posix())
        if parts.scheme not in CLOUD_SCHEMES:
            raise ValueError(f"{text}: {parts.scheme}:// is not a storage Ray writes to; fix: "
                             f"use a local path or a URI of {', '.join(CLOUD_SCHEMES)}")
        if not parts.netloc or parts.query:
            raise ValueError(f"{text}: fix: write it as {parts.scheme}://bucket/path, without "
                             "?options (set endpoints and credentials through the environment, "
                             "e.g. AWS_ENDPOINT_URL)")
        return cls(f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/"))

    @property
    def is_local(self) -> bool:
        return "://" not in self.uri

    @property
    def name(self) -> str:
        return posixpath.basename(self.uri)

    @property
    def parent(self) -> Location:
        return Location(posixpath.dirname(self.uri))

    def __truediv__(self, relative: str) -> Location:
        return Location(f"{self.uri}/{relative.strip('/')}")

    def __str__(self) -> str:
        return self.uri

    @property
    def _fs(self) -> tuple[pafs.FileSystem, str]:
        if self.is_local:
            return pafs.LocalFileSystem(), self.uri
        parts = urlsplit(self.uri)
        return _filesystem(parts.scheme, parts.netloc), f"{parts.netloc}{parts.path}"

    def from_fs_path(self, path: str) -> Location:
        """The location of ``path`` as Ray's file system for this location names it: Ray reports
        cloud paths without their scheme (``bucket/key``)."""
        if self.is_local or "://" in path:
            return Location.parse(path)
        return Location(f"{urlsplit(self.uri).scheme}://{path.strip('/')}")

    def _type(self) -> pafs.FileType:
        fs, path = self._fs
        kind: pafs.FileType = fs.get_file_info(path).type
        return kind

    def exists(self) -> bool:
        return bool(self._type() != pafs.FileType.NotFound)

    def is_file(self) -> bool:
        return bool(self._type() == pafs.FileType.File)

    def read_bytes(self) -> bytes:
        fs, path = self._fs
        with fs.open_input_stream(path) as stream:
            return bytes(stream.read())

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def read_json(self) -> Any:
        """The JSON document in this file.

        A cloud object rewritten while it is read (in ranged requests) can come back as the
        start of the new version cut at the old one's size: read again until it parses.
        """
        for attempt in range(READ_ATTEMPTS):
            try:
                return json.loads(self.read_bytes())
            except json.JSONDecodeError:
                if self.is_local or attempt == READ_ATTEMPTS - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    def write_bytes(self, data: bytes) -> None:
        """Writes the whole file or nothing: a local file is replaced by a rename, a cloud
        object is only there once its upload completes."""
        if self.is_local:
            atomic_write_bytes(Path(self.uri), data)
            return
        fs, path = self._fs
        with fs.open_output_stream(path) as stream:
            stream.write(data)

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode())

    def names(self) -> list[str]:
        """The names of the files and directories directly in this directory (none if absent)."""
        fs, path = self._fs
        selector = pafs.FileSelector(path, recursive=False, allow_not_found=True)
        return [posixpath.basename(info.path) for info in fs.get_file_info(selector)]

    def files(self) -> list[tuple[str, int]]:
        """Every file below this directory (none if it does not exist): relative path, size."""
        fs, path = self._fs
        selector = pafs.FileSelector(path, recursive=True, allow_not_found=True)
        return [
            (posixpath.relpath(info.path, path), info.size or 0)
            for info in fs.get_file_info(selector) if info.type == pafs.FileType.File
        ]

    def remove(self) -> None:
        """Deletes this file or directory tree, if it exists."""
        fs, path = self._fs
        kind = fs.get_file_info(path).type
        if kind == pafs.FileType.Directory:
            fs.delete_dir(path)
        elif kind == pafs.FileType.File:
            fs.delete_file(path)

    def copy_to(self, target: Location) -> None:
        """Copies this directory tree to ``target`` (any storage to any storage).

        Raises:
            FileNotFoundError: When this directory holds no file.
        """
        files = self.files()
        if not files:
            raise FileNotFoundError(self.uri)
        fs, path = self._fs
        target_fs, target_path = target._fs
        target_fs.create_dir(target_path, recursive=True)
        pafs.copy_files(path, target_path, source_filesystem=fs, destination_filesystem=target_fs)

    def download(self, directory: Path) -> Path:
        """Copies this file into ``directory`` (a local one is not copied); returns the local path."""
        if self.is_local:
            return Path(self.uri)
        fs, path = self._fs
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / self.name
        partial = target.with_name(f".{target.name}.part")  # never a half file under the name
        try:
            pafs.copy_files(path, partial.as_posix(), source_filesystem=fs,
                            destination_filesystem=pafs.LocalFileSystem())
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return target
