"""``flx-ipy keygen``, ``sign`` and ``verify``: the same functions the signature policies use
(``flx_ipy.core.trust``), so ``verify`` says exactly what ``require`` would refuse."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from .output import CliError, add_json_flag, emit


def register(sub: Any) -> None:
    k = sub.add_parser("keygen", help="make an ed25519 signing key pair (OpenSSH format)",
                       description="Write an ed25519 key pair in OpenSSH format: KEYFILE (private, mode 0600) "
                                   "and KEYFILE.pub, and print the allowed_signers line that trusts it. "
                                   "Keys made with `ssh-keygen -t ed25519` work the same.")
    k.add_argument("keyfile", metavar="KEYFILE")
    k.add_argument("--principal", help="who signs with it (default: user@host); the .pub comment")
    add_json_flag(k)
    k.set_defaults(func=run_keygen)

    s = sub.add_parser("sign", help="sign a plugin (file or package folder)",
                       description="Sign every file of a plugin (a .py file or a package folder) with an "
                                   "ed25519 SSH key: writes flx-ipy.sig in the folder (or FILE.py.flx-ipy.sig).")
    s.add_argument("path", metavar="PATH")
    s.add_argument("--key", required=True, metavar="KEYFILE", help="private key (flx-ipy keygen or ssh-keygen)")
    s.add_argument("--principal", help="signer identity (default: the key's .pub comment)")
    add_json_flag(s)
    s.set_defaults(func=run_sign)

    v = sub.add_parser("verify", help="check a plugin's signature against allowed_signers",
                       description="Exit 0 when PATH is signed by a key the allowed_signers file trusts for "
                                   "namespace flx-ipy and every file matches the signed manifest; else exit 1 "
                                   "naming the files that differ.")
    v.add_argument("path", metavar="PATH")
    v.add_argument("--allowed-signers", required=True, metavar="FILE",
                   help='OpenSSH allowed_signers: PRINCIPAL namespaces="flx-ipy" ssh-ed25519 AAAA...')
    add_json_flag(v)
    v.set_defaults(func=run_verify)


def _sig_error() -> Any:
    from ..core.sshsig import SignatureError

    return SignatureError


def run_keygen(args: argparse.Namespace) -> int:
    from ..core.sshsig import generate_key
    from ..core.trust import default_principal

    principal = args.principal or default_principal(os.devnull)
    try:
        priv, pub = generate_key(args.keyfile, principal)
    except FileExistsError as e:
        raise CliError(f"keygen: {e}") from None
    except _sig_error() as e:
        raise CliError(f"keygen: {e}") from None
    key = " ".join(pub.read_text().split()[:2])
    line = f'{principal} namespaces="flx-ipy" {key}'
    emit(args, {"private_key": str(priv), "public_key": str(pub), "principal": principal, "allowed_signers": line},
         f"wrote {priv} (private, keep it secret) and {pub}\n"
         f"trust it by adding this line to an allowed_signers file:\n{line}")
    return 0


def run_sign(args: argparse.Namespace) -> int:
    from ..core.trust import sign_plugin

    if not os.path.exists(os.path.expanduser(args.path)):
        raise CliError(f"sign: no such file or folder: {args.path}", code=2)
    if not os.path.isfile(os.path.expanduser(args.key)):
        raise CliError(f"sign: no such key file: {args.key} (make one: `flx-ipy keygen {args.key}`)", code=2)
    try:
        res = sign_plugin(args.path, args.key, args.principal)
    except _sig_error() as e:
        raise CliError(f"sign: {e}") from None
    except OSError as e:
        raise CliError(f"sign: {e.filename or args.path}: {e.strerror or e}") from None
    removed = f"\nremoved stale bytecode: {', '.join(res.removed_bytecode)}" if res.removed_bytecode else ""
    emit(args, res.to_dict(), f"signed {len(res.files)} file{'s' if len(res.files) != 1 else ''} of "
         f"{Path(args.path).resolve()} as {res.principal}: {res.signature_file}{removed}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from ..core.trust import check_path

    if not os.path.exists(os.path.expanduser(args.path)):
        raise CliError(f"verify: no such file or folder: {args.path}", code=2)
    try:
        info = check_path(args.path, args.allowed_signers)
    except _sig_error() as e:
        raise CliError(f"verify: {e}", code=2) from None
    human = f"{info.unit}: {info.summary()}"
    if str(info.status) != "modified":  # a "modified" summary already names the files, grouped by change
        human += "".join(f"\n  {kind}: {rel}" for rel, kind in info.changes.items())
    emit(args, info.to_dict(), human)
    return 0 if info.ok else 1
