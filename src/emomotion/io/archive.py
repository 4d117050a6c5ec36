"""Archives as inputs: ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.zst``/``.tzst`` and ``.zip``, unpacked once.

Used by ``data build --input ARCHIVE`` and the study's dataset stages. Unpacking is safe (tar's
``data`` filter; zip member names that leave the folder are refused) and recorded by a marker file,
so a second run reuses the folder.
"""

from __future__ import annotations

import logging
import tarfile
import zipfile
from pathlib import Path

from emomotion.errors import ConfigError

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst", ".zip")
MARKER = ".unpacked"


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def archive_stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack ``archive`` into ``dest`` once (a marker file records completion); returns ``dest``."""
    marker = dest / MARKER
    if marker.exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    log.info("unpacking %s into %s", archive, dest)
    name = archive.name.lower()
    import zstandard

    try:
        if name.endswith(".zip"):
            _unzip(archive, dest)
        elif name.endswith((".tar.zst", ".tzst")):
            with open(archive, "rb") as fh:
                reader = zstandard.ZstdDecompressor().stream_reader(fh)
                with tarfile.open(fileobj=reader, mode="r|") as tar:
                    tar.extractall(dest, filter="data")
        else:
            with tarfile.open(archive, mode="r:*") as tar:
                tar.extractall(dest, filter="data")
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, zstandard.ZstdError) as exc:
        raise ConfigError(f"cannot unpack: {exc}", path=archive) from exc
    marker.write_text("ok\n")
    return dest


def _unzip(archive: Path, dest: Path) -> None:
    root = dest.resolve()
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            target = (dest / member).resolve()
            if root != target and root not in target.parents:
                raise ConfigError(f"member {member!r} would be written outside the folder", path=archive)
        zf.extractall(dest)


def content_root(folder: Path) -> Path:
    """The folder an unpacked archive's content lives in: its only top-level folder, when there is one."""
    entries = [p for p in folder.iterdir() if p.name != MARKER]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder
