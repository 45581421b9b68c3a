"""SSH signatures (OpenSSH ``PROTOCOL.sshsig``) and ``allowed_signers`` files, in-process.

Why SSH keys: they are the keys plugin authors already have, ``ssh-keygen -Y sign`` makes the
same signatures, and git's ``allowed_signers`` file is a ready trust store. Why in-process:
``ssh-keygen -Y verify`` costs a process start per plugin (~4 ms); this costs ~0.1 ms (see
``benchmarks/bench_signing.py``). Only ed25519 keys are accepted — the one algorithm with no
parameters to get wrong.

``cryptography`` is imported inside the functions that need it, so importing this module (or
flx_ipy) costs nothing when no policy or command asks for a signature. It is the ``trust``
extra: ``pip install "flx_ipy[trust]"``.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "NAMESPACE",
    "AllowedSigner",
    "AllowedSigners",
    "SignatureError",
    "armor",
    "dearmor",
    "generate_key",
    "key_fingerprint",
    "public_key_line",
    "sign",
    "verify",
]

#: the namespace every flx-ipy signature is made in (``ssh-keygen -Y sign -n flx-ipy``)
NAMESPACE = "flx-ipy"
_MAGIC = b"SSHSIG"
_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_END = "-----END SSH SIGNATURE-----"
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
_KEY_TYPE = b"ssh-ed25519"


class SignatureError(ValueError):
    """A signature that is malformed, does not verify, or uses a key type we do not accept."""


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise SignatureError("signatures need the `cryptography` package: pip install \"flx_ipy[trust]\"") from None
    return ed25519


# ------------------------------------------------------------------------- SSH wire format
def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _read_string(buf: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(buf):
        raise SignatureError("truncated signature blob")
    (n,) = struct.unpack_from(">I", buf, pos)
    end = pos + 4 + n
    if end > len(buf):
        raise SignatureError("truncated signature blob")
    return buf[pos + 4:end], end


def _ed25519_raw(key_blob: bytes) -> bytes:
    kind, pos = _read_string(key_blob, 0)
    if kind != _KEY_TYPE:
        raise SignatureError(f"key type {kind.decode(errors='replace')!r} is not accepted; use an ed25519 key "
                             "(`flx-ipy keygen KEYFILE` or `ssh-keygen -t ed25519`)")
    raw, _ = _read_string(key_blob, pos)
    if len(raw) != 32:
        raise SignatureError("malformed ed25519 public key")
    return raw


def armor(blob: bytes) -> str:
    b64 = base64.b64encode(blob).decode()
    lines = [b64[i:i + 70] for i in range(0, len(b64), 70)]
    return "\n".join([_BEGIN, *lines, _END]) + "\n"


def dearmor(text: str) -> bytes:
    body = text.strip()
    if not (body.startswith(_BEGIN) and body.endswith(_END)):
        raise SignatureError("not an armored SSH signature (-----BEGIN SSH SIGNATURE----- ... END)")
    try:
        return base64.b64decode("".join(body[len(_BEGIN):-len(_END)].split()), validate=True)
    except ValueError as e:
        raise SignatureError(f"the SSH signature is not valid base64: {e}") from None


def _signed_data(message: bytes, namespace: str, hash_alg: str) -> bytes:
    digest = _HASHES[hash_alg](message).digest()
    return _MAGIC + _string(namespace.encode()) + _string(b"") + _string(hash_alg.encode()) + _string(digest)


# ------------------------------------------------------------------------- keys
def public_key_line(key_blob: bytes, comment: str = "") -> str:
    """``ssh-ed25519 AAAA... [comment]``, as in a ``.pub`` file."""
    line = f"{_KEY_TYPE.decode()} {base64.b64encode(key_blob).decode()}"
    return f"{line} {comment}" if comment else line


def key_fingerprint(key_blob: bytes) -> str:
    """``SHA256:...``, as ``ssh-keygen -l`` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key_blob).digest()).decode().rstrip("=")


def _blob_of(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    line = public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return base64.b64decode(line.split()[1])


def load_private_key(path: str | Path, passphrase: bytes | None = None) -> Any:
    """An ed25519 private key from an OpenSSH key file (``flx-ipy keygen`` or ``ssh-keygen``)."""
    ed25519 = _crypto()
    from cryptography.hazmat.primitives import serialization

    data = Path(path).read_bytes()
    try:
        key = serialization.load_ssh_private_key(data, password=passphrase)
    except (ValueError, TypeError) as e:
        raise SignatureError(f"{path}: cannot read the private key: {e}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SignatureError(f"{path}: is a {type(key).__name__}; flx-ipy signs with ed25519 keys "
                             "(`flx-ipy keygen KEYFILE` or `ssh-keygen -t ed25519`)")
    return key


def key_is_encrypted(path: str | Path) -> bool:
    """An OpenSSH private key protected by a passphrase (its cipher is not ``none``)."""
    try:
        text = Path(path).read_text()
        body = "".join(line for line in text.splitlines() if not line.startswith("-----"))
        raw = base64.b64decode(body)
    except (OSError, ValueError):
        return False
    magic = b"openssh-key-v1\x00"
    if not raw.startswith(magic):
        return False
    try:
        cipher, _ = _read_string(raw, len(magic))
    except SignatureError:
        return False
    return cipher != b"none"


def generate_key(path: str | Path, comment: str = "") -> tuple[Path, Path]:
    """Write a new ed25519 key pair: ``path`` (private, mode 0600) and ``path.pub``.

    Refuses to overwrite either file: a lost signing key cannot be recovered."""
    ed25519 = _crypto()
    from cryptography.hazmat.primitives import serialization

    priv_path = Path(path)
    pub_path = priv_path.with_name(priv_path.name + ".pub")
    for p in (priv_path, pub_path):
        if p.exists():
            raise FileExistsError(f"{p} already exists; choose another KEYFILE (nothing was written)")
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption())
    priv_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub_path.write_text(public_key_line(_blob_of(key.public_key()), comment) + "\n")
    return priv_path, pub_path


# ------------------------------------------------------------------------- sign / verify
def sign(message: bytes, private_key: Any, namespace: str = NAMESPACE, hash_alg: str = "sha512") -> str:
    """An armored SSH signature of ``message``, byte-for-byte what ``ssh-keygen -Y sign`` makes."""
    blob = _blob_of(private_key.public_key())
    sig = private_key.sign(_signed_data(message, namespace, hash_alg))
    sig_blob = _string(_KEY_TYPE) + _string(sig)
    out = (_MAGIC + struct.pack(">I", 1) + _string(blob) + _string(namespace.encode()) + _string(b"")
           + _string(hash_alg.encode()) + _string(sig_blob))
    return armor(out)


def verify(message: bytes, armored: str, namespace: str = NAMESPACE) -> bytes:
    """Check the signature over ``message``; returns the signing key's blob (to look up in an
    ``allowed_signers`` file). Raises ``SignatureError`` saying why it does not verify."""
    blob = dearmor(armored)
    if not blob.startswith(_MAGIC):
        raise SignatureError("not an SSHSIG signature")
    pos = len(_MAGIC)
    if len(blob) < pos + 4 or struct.unpack_from(">I", blob, pos)[0] != 1:
        raise SignatureError("unsupported SSHSIG version")
    pos += 4
    key_blob, pos = _read_string(blob, pos)
    ns, pos = _read_string(blob, pos)
    _reserved, pos = _read_string(blob, pos)
    hash_alg, pos = _read_string(blob, pos)
    sig_blob, pos = _read_string(blob, pos)
    if ns.decode(errors="replace") != namespace:
        raise SignatureError(f"the signature was made for namespace {ns.decode(errors='replace')!r}, "
                             f"not {namespace!r}")
    alg = hash_alg.decode(errors="replace")
    if alg not in _HASHES:
        raise SignatureError(f"unsupported hash algorithm {alg!r}")
    sig_type, spos = _read_string(sig_blob, 0)
    raw_sig, _ = _read_string(sig_blob, spos)
    if sig_type != _KEY_TYPE:
        raise SignatureError(f"signature type {sig_type.decode(errors='replace')!r} is not accepted (ed25519 only)")
    ed25519 = _crypto()
    from cryptography.exceptions import InvalidSignature

    pub = ed25519.Ed25519PublicKey.from_public_bytes(_ed25519_raw(key_blob))
    try:
        pub.verify(raw_sig, _signed_data(message, namespace, alg))
    except InvalidSignature:
        raise SignatureError("the signature does not match the signed content") from None
    return key_blob


# ------------------------------------------------------------------------- allowed_signers
@dataclass(frozen=True)
class AllowedSigner:
    """One line of an ``allowed_signers`` file (``man ssh-keygen``, "ALLOWED SIGNERS")."""

    principals: tuple[str, ...]
    key_blob: bytes
    namespaces: tuple[str, ...] | None = None  # None: every namespace
    line: int = 0
    options: dict[str, str] = field(default_factory=dict)

    def allows_namespace(self, namespace: str) -> bool:
        return self.namespaces is None or any(fnmatch.fnmatchcase(namespace, p) for p in self.namespaces)

    def matches(self, principal: str) -> bool:
        """OpenSSH pattern-list semantics: ``*``/``?`` wildcards, a ``!pattern`` excludes."""
        hit = False
        for pat in self.principals:
            if pat.startswith("!"):
                if fnmatch.fnmatchcase(principal, pat[1:]):
                    return False
            elif fnmatch.fnmatchcase(principal, pat):
                hit = True
        return hit


class AllowedSigners:
    """Who may sign: ``PRINCIPALS [OPTIONS] ssh-ed25519 AAAA... [comment]`` per line."""

    def __init__(self, signers: Iterable[AllowedSigner] = (), source: str = "") -> None:
        self.signers = list(signers)
        self.source = source

    @classmethod
    def load(cls, path: str | Path) -> AllowedSigners:
        p = Path(path).expanduser()
        try:
            text = p.read_text()
        except OSError as e:
            raise SignatureError(f"cannot read allowed_signers file {p}: {e.strerror or e}") from None
        return cls.parse(text, str(p))

    @classmethod
    def parse(cls, text: str, source: str = "allowed_signers") -> AllowedSigners:
        signers = []
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            words = _tokens(line)
            if len(words) < 3:
                raise SignatureError(f"{source}:{n}: expected `PRINCIPALS [OPTIONS] KEYTYPE KEY`")
            principals = tuple(p for p in words[0].split(",") if p)
            idx = 1
            options: dict[str, str] = {}
            if not _is_key_type(words[1]):
                for opt in _split_options(words[1]):
                    k, _, v = opt.partition("=")
                    options[k.lower()] = v
                idx = 2
            if idx + 1 >= len(words):
                raise SignatureError(f"{source}:{n}: no key on this line")
            key_type, key_b64 = words[idx], words[idx + 1]
            if "cert-authority" in options:
                continue  # certificate authorities sign certificates, not plugins: not supported here
            if key_type != _KEY_TYPE.decode():
                continue  # other key types are never accepted for flx-ipy signatures
            try:
                blob = base64.b64decode(key_b64, validate=True)
                _ed25519_raw(blob)
            except (ValueError, SignatureError):
                raise SignatureError(f"{source}:{n}: malformed ed25519 key") from None
            ns = options.get("namespaces")
            signers.append(AllowedSigner(principals, blob, tuple(ns.split(",")) if ns is not None else None,
                                         n, options))
        return cls(signers, source)

    def principals_for(self, key_blob: bytes, namespace: str = NAMESPACE) -> list[AllowedSigner]:
        return [s for s in self.signers if s.key_blob == key_blob and s.allows_namespace(namespace)]

    def signer_for(self, key_blob: bytes, principal: str | None, namespace: str = NAMESPACE) -> str | None:
        """The principal that ``key_blob`` may sign as (``principal`` if given and allowed)."""
        for s in self.principals_for(key_blob, namespace):
            if principal is None:
                plain = [p for p in s.principals if not p.startswith("!") and not any(c in p for c in "*?")]
                if plain:
                    return plain[0]
            elif s.matches(principal):
                return principal
        return None


def _is_key_type(word: str) -> bool:
    return word.startswith(("ssh-", "ecdsa-", "sk-"))


def _tokens(line: str) -> list[str]:
    """Whitespace-separated words; a double-quoted part (an option's value) keeps its spaces."""
    out, cur, quoted = [], "", False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        if ch.isspace() and not quoted:
            if cur:
                out.append(cur)
            cur = ""
            continue
        cur += ch
    if cur:
        out.append(cur)
    return out


def _split_options(text: str) -> list[str]:
    """``namespaces="a,b",valid-after=2024`` -> options (commas inside quotes stay)."""
    out, cur, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
            continue
        if ch == "," and not quoted:
            out.append(cur)
            cur = ""
            continue
        cur += ch
    if cur:
        out.append(cur)
    return out
