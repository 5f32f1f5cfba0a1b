"""SHA-256 cache as in AUTOMATIC1111 1.10 ``modules/hashes.py`` (a dict stands in for diskcache)."""

import hashlib
import os

_caches = {}
dumped = []


def cache(subsection):
    return _caches.setdefault(subsection, {})


def dump_cache():
    dumped.append(True)


def calculate_sha256(filename):
    digest = hashlib.sha256()
    with open(filename, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_from_cache(filename, title, use_addnet_hash=False):
    hashes = cache("hashes-addnet") if use_addnet_hash else cache("hashes")
    try:
        ondisk_mtime = os.path.getmtime(filename)
    except FileNotFoundError:
        return None
    if title not in hashes:
        return None
    cached_sha256 = hashes[title].get("sha256", None)
    cached_mtime = hashes[title].get("mtime", 0)
    if ondisk_mtime > cached_mtime or cached_sha256 is None:
        return None
    return cached_sha256


def sha256(filename, title, use_addnet_hash=False):
    value = sha256_from_cache(filename, title, use_addnet_hash)
    if value is not None:
        return value
    value = calculate_sha256(filename)
    cache("hashes")[title] = {"mtime": os.path.getmtime(filename), "sha256": value}
    return value
