#!/usr/bin/python3
"""Fetches every pinned asset of models/manifest.json into third_party/, verifying sha256.

Usage: fetch_assets.py [--with-cuda]   (--with-cuda adds ONNX Runtime's CUDA/TensorRT providers)

npm tarballs come from `npm pack`, Debian packages from `apt-get download`; nothing else is
contacted. Idempotent: a file already in place with the right hash is not fetched again, and
downloads are cached in third_party/.cache. A hash mismatch removes the bad file and fails.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fail(message):
    print(f"fetch_assets: error: {message}", file=sys.stderr)
    sys.exit(1)


def verified(path, expected):
    return os.path.isfile(path) and sha256_of(path) == expected


def fetch_npm(entry, cache):
    name = f"{entry['package']}-{entry['version']}.tgz"
    tarball = os.path.join(cache, name)
    if not verified(tarball, entry["sha256"]):
        print(f"fetch_assets: npm pack {entry['package']}@{entry['version']}", flush=True)
        subprocess.run(["npm", "pack", "--silent", f"{entry['package']}@{entry['version']}"],
                       cwd=cache, check=True, stdout=subprocess.DEVNULL)
        # Scoped or dotted names keep their spelling in npm's file name.
        if not verified(tarball, entry["sha256"]):
            got = sha256_of(tarball) if os.path.exists(tarball) else "missing"
            if os.path.exists(tarball):
                os.remove(tarball)
            fail(f"{name}: sha256 {got} != pinned {entry['sha256']}")
    return tarball


def fetch_deb(entry, cache):
    name = f"{entry['package']}_{entry['version'].replace(':', '%3a')}_all.deb"
    deb = os.path.join(cache, name)
    if not verified(deb, entry["sha256"]):
        print(f"fetch_assets: apt-get download {entry['package']}={entry['version']}", flush=True)
        subprocess.run(["apt-get", "download", "-q", f"{entry['package']}={entry['version']}"],
                       cwd=cache, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not verified(deb, entry["sha256"]):
            got = sha256_of(deb) if os.path.exists(deb) else "missing"
            if os.path.exists(deb):
                os.remove(deb)
            fail(f"{name}: sha256 {got} != pinned {entry['sha256']}")
    return deb


def install_file(src, dst, expected):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = dst + ".part"
    shutil.copyfile(src, tmp)
    if expected and sha256_of(tmp) != expected:
        os.remove(tmp)
        fail(f"{dst}: sha256 does not match the manifest")
    os.replace(tmp, dst)


def unpack(entry, archive, kind, out):
    files = entry.get("files", [])
    dirs = entry.get("dirs", [])
    todo_files = [f for f in files if not verified(os.path.join(out, f["to"]), f["sha256"])]
    todo_dirs = [d for d in dirs if not os.path.isdir(os.path.join(out, d["to"]).rstrip("/"))]
    if not todo_files and not todo_dirs:
        return
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        if kind == "npm":
            with tarfile.open(archive) as tar:
                wanted = [f["from"] for f in todo_files]
                members = [m for m in tar.getmembers()
                           if m.name in wanted or any(m.name.startswith(d["from"]) for d in todo_dirs)]
                tar.extractall(scratch, members=members)  # members are the manifest's own paths
        else:
            subprocess.run(["dpkg-deb", "-x", archive, scratch], check=True)
        for f in todo_files:
            install_file(os.path.join(scratch, f["from"]), os.path.join(out, f["to"]), f["sha256"])
        for d in todo_dirs:
            dst = os.path.join(out, d["to"]).rstrip("/")
            shutil.rmtree(dst + ".part", ignore_errors=True)
            shutil.copytree(os.path.join(scratch, d["from"]), dst + ".part", dirs_exist_ok=True)
            os.replace(dst + ".part", dst)


def main():
    with_cuda = "--with-cuda" in sys.argv[1:]
    out = os.environ.get("FSWAP_THIRD_PARTY_DIR", os.path.join(ROOT, "third_party"))
    cache = os.path.join(out, ".cache")
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(ROOT, "models", "manifest.json")) as f:
        manifest = json.load(f)
    for entry in manifest["npm"] + (manifest["npm_cuda"] if with_cuda else []):
        unpack(entry, fetch_npm(entry, cache), "npm", out)
    for entry in manifest["debian"]:
        unpack(entry, fetch_deb(entry, cache), "deb", out)
    print(f"fetch_assets: all assets verified in {out}")


if __name__ == "__main__":
    main()
