"""The local signing key that stands in for Cognito: made once, kept in .local/ (git-ignored)."""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parent.parent
KEY_DIR = Path(os.environ.get("LOCAL_STATE_DIR", ROOT / ".local"))
PRIVATE = KEY_DIR / "jwt-private.pem"
PUBLIC = KEY_DIR / "jwt-public.pem"
ISSUER = "http://127.0.0.1/buyer-protection-local"
AUDIENCE = "buyer-protection-local"


def ensure_keypair() -> tuple[Path, Path]:
    """Create the key pair if missing; return (private, public) paths."""
    if not PRIVATE.exists() or not PUBLIC.exists():
        KEY_DIR.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        PRIVATE.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        PRIVATE.chmod(0o600)
        PUBLIC.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
    return PRIVATE, PUBLIC
