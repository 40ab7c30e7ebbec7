"""Data files shipped inside PyPI wheels or Debian packages, found without network beyond registries.

Order for a wheel member: the installed package's folder (located with `importlib.util.find_spec`,
nothing is imported), a file extracted earlier, a wheel in the wheel cache, `pip download`.
Order for a source-distribution member (data some projects ship only in their sdist): a file extracted
earlier, the sdist in the wheel cache, a download of the sdist PyPI lists for that version (checked against its
SHA-256; nothing is built). Order for a Debian file: the installed path, a file extracted earlier, a `.deb` in the
cache, `apt-get download`. Caches: `$ISRNET_CACHE` (default `~/.cache/isrnet`), wheels in
`$ISRNET_WHEEL_CACHE` (default `<cache>/wheels`).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable

from isrnet.errors import IsrnetError
from isrnet.utilities.files import atomic_file

_DOWNLOAD_TIMEOUT_S = 900


def cache_root() -> Path:
    """Root of isrnet's download cache."""
    if os.environ.get("ISRNET_CACHE"):
        return Path(os.environ["ISRNET_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "isrnet"


def wheel_cache() -> Path:
    """Folder where wheels are looked for and downloaded to."""
    if os.environ.get("ISRNET_WHEEL_CACHE"):
        return Path(os.environ["ISRNET_WHEEL_CACHE"]).expanduser()
    return cache_root() / "wheels"


def _normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "_", distribution).lower()


def _installed(member: str) -> Path | None:
    top = member.split("/")[0]
    try:
        spec = importlib.util.find_spec(top)  # top-level name: finds the folder, imports nothing
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location).parent / member
        if candidate.is_file():
            return candidate
    return None


def _cached_wheels(distribution: str, version: str) -> list[Path]:
    """Wheels of `distribution` in the caches, exact version first."""
    folders = [wheel_cache(), cache_root() / "wheels"]
    wheels = [w for folder in dict.fromkeys(folders) if folder.is_dir() for w in sorted(folder.glob("*.whl"))]
    wheels = [w for w in wheels if _normalise(w.name.split("-")[0]) == _normalise(distribution)]
    return sorted(wheels, key=lambda w: w.name.split("-")[1] != version)


def _extract_member(wheel: Path, member: str, target: Path) -> bool:
    try:
        with zipfile.ZipFile(wheel) as archive:
            if member not in archive.namelist():
                return False
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, atomic_file(target) as sink:
                shutil.copyfileobj(source, sink)
            return True
    except (zipfile.BadZipFile, OSError):
        return False


def _from_cached_wheels(distribution: str, version: str, member: str) -> Path | None:
    for wheel in _cached_wheels(distribution, version):
        target = cache_root() / "files" / wheel.name[: -len(".whl")] / member
        if target.is_file() or _extract_member(wheel, member, target):
            return target
    return None


def _pip_download(distribution: str, version: str) -> str:
    """Run pip download into the wheel cache; returns '' on success, else pip's last error line."""
    folder = wheel_cache()
    print(f"downloading the {distribution} {version} wheel from PyPI into {folder} (only once)", file=sys.stderr,
          flush=True)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                                 "-d", str(folder), f"{distribution}=={version}"],
                                capture_output=True, text=True, timeout=_DOWNLOAD_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if result.returncode == 0:
        return ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"pip exited with status {result.returncode}"


def _found_or_fetched(look: Callable[[], Path | None], fetch: Callable[[], str], download: bool,
                      missing: Callable[[str], str]) -> Path:
    """`look()`, else (with `download`) `fetch()` and `look()` again; when nothing is found, an IsrnetError whose
    message is `missing(what fetching said went wrong, '' when nothing did)`."""
    found = look()
    problem = ""
    if found is None and download:
        problem = fetch()
        found = look()
    if found is None:
        raise IsrnetError(missing(problem))
    return found


def packaged_file(distribution: str, version: str, member: str, download: bool = True) -> Path:
    """Path of `member` (e.g. 'nilearn/datasets/data/x.nii.gz') shipped in the wheel of `distribution`."""
    return _found_or_fetched(
        lambda: _installed(member) or _from_cached_wheels(distribution, version, member),
        lambda: _pip_download(distribution, version), download,
        lambda problem: f"cannot find {member} (from the {distribution} {version} wheel)"
                        f"{f': pip download failed ({problem})' if problem else ''}. "
                        f"Run `pip download --no-deps -d {wheel_cache()} {distribution}=={version}` on a machine that "
                        f"reaches PyPI and copy the wheel there (or set ISRNET_WHEEL_CACHE to its folder), "
                        f"or `pip install {distribution}=={version}`")


PYPI_SIMPLE = "https://pypi.org/simple/{distribution}/"  # the JSON form of the simple index (PEP 691)


def _sdist_names(distribution: str, version: str) -> list[str]:
    return list(dict.fromkeys([f"{distribution}-{version}.tar.gz", f"{_normalise(distribution)}-{version}.tar.gz"]))


def _download_sdist(distribution: str, version: str) -> str:
    """Fetch the sdist PyPI lists for this version into the wheel cache; returns '' on success, else why not."""
    folder = wheel_cache()
    print(f"downloading the {distribution} {version} source distribution from PyPI into {folder} (only once)",
          file=sys.stderr, flush=True)
    request = urllib.request.Request(PYPI_SIMPLE.format(distribution=distribution),
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            files = json.load(answer)["files"]
        wanted = _sdist_names(distribution, version)
        sdist = next(f for f in files if f["filename"] in wanted)
        with urllib.request.urlopen(sdist["url"], timeout=_DOWNLOAD_TIMEOUT_S) as answer:
            content = answer.read()
    except StopIteration:
        return "PyPI lists no source distribution for this version"
    except (OSError, ValueError, KeyError) as error:
        return str(error)
    if hashlib.sha256(content).hexdigest() != sdist["hashes"].get("sha256"):
        return f"{sdist['filename']} does not match the SHA-256 PyPI lists"
    with atomic_file(folder / sdist["filename"]) as sink:
        sink.write(content)
    return ""


def _from_cached_sdist(distribution: str, version: str, member: str) -> Path | None:
    for archive_path in (wheel_cache() / name for name in _sdist_names(distribution, version)):
        if not archive_path.is_file():
            continue
        target = cache_root() / "files" / archive_path.name[: -len(".tar.gz")] / member
        if target.is_file():
            return target
        try:
            with tarfile.open(archive_path, "r:gz") as archive:
                entry = next((e for e in archive if e.isfile() and e.name.split("/", 1)[-1] == member), None)
                if entry is None:
                    continue
                with archive.extractfile(entry) as source, atomic_file(target) as sink:
                    shutil.copyfileobj(source, sink)
            return target
        except (tarfile.TarError, OSError):
            continue
    return None


def sdist_file(distribution: str, version: str, member: str, download: bool = True) -> Path:
    """Path of `member` (relative to the sdist's top folder, e.g. 'data/x.nrrd') of `distribution`'s sdist."""
    return _found_or_fetched(
        lambda: _from_cached_sdist(distribution, version, member),
        lambda: _download_sdist(distribution, version), download,
        lambda problem: f"cannot find {member} in the {distribution} {version} source distribution"
                        f"{f': the download failed ({problem})' if problem else ''}. Download "
                        f"{distribution}-{version}.tar.gz from https://pypi.org/project/{distribution}/{version}/"
                        f"#files on a machine that reaches PyPI and put it in {wheel_cache()} (or set "
                        f"ISRNET_WHEEL_CACHE to its folder)")


def _run(command: list[str], cwd: Path) -> bool:
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, timeout=_DOWNLOAD_TIMEOUT_S).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _cached_deb(package: str, folder: Path) -> Path | None:
    debs = sorted(folder.glob(f"{package}_*.deb")) if folder.is_dir() else []
    return debs[-1] if debs else None


def _apt_download(package: str, folder: Path) -> Path | None:
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("apt-get") is None:
        return None
    if not _run(["apt-get", "download", package], folder):
        _run(["apt-get", "update"], folder)
        _run(["apt-get", "download", package], folder)
    return _cached_deb(package, folder)


def _extract_from_deb(deb: Path, path: str, target: Path) -> bool:
    """Copy one file of a .deb's file system tree (via `dpkg-deb --fsys-tarfile`) to `target`."""
    if shutil.which("dpkg-deb") is None:
        return False
    wanted = {path.lstrip("/"), "./" + path.lstrip("/")}
    process = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    found = False
    try:
        with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
            for entry in archive:
                if entry.name in wanted and entry.isfile():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.extractfile(entry) as source, atomic_file(target) as sink:
                        shutil.copyfileobj(source, sink)
                    found = True
                    break
    except (tarfile.TarError, OSError):
        found = False
    finally:
        process.stdout.close()
        process.kill()
        process.wait()
    return found


def debian_file(package: str, path: str, download: bool = True) -> Path:
    """Path of file `path` (absolute, as installed) of Debian package `package`."""
    if Path(path).is_file():
        return Path(path)
    folder = cache_root() / "debian"
    target = folder / package / path.lstrip("/")
    if target.is_file():
        return target
    deb = _cached_deb(package, folder) or (_apt_download(package, folder) if download else None)
    if deb is not None and _extract_from_deb(deb, path, target):
        return target
    reason = f"{deb.name} does not contain it" if deb is not None else "apt-get download failed or is unavailable"
    raise IsrnetError(
        f"cannot find {path} from the Debian package {package} ({reason}). Run "
        f"`apt-get install {package}`, or `apt-get download {package}` and put the .deb in {folder}")


def source_file(source: tuple[str, ...]) -> Path:
    """The file a source names: (distribution, version, member) of a wheel, ('sdist', distribution, version,
    member) of a source distribution, or ('debian', package, path)."""
    if source[0] == "debian":
        return debian_file(source[1], source[2])
    return sdist_file(*source[1:]) if source[0] == "sdist" else packaged_file(*source)
