"""GOST R 34.10-2012 / 34.11-2012 (Kazakh "GOST 2015") through gostcrypto: vectors, conventions, CMS."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from asn1crypto import cms

from signing import Expectations, GostSigner, Reason, Signer, TrustStore, sign_cms, verify_cms
from signing.algorithms import KeyKind, key_kind

gostcrypto = pytest.importorskip("gostcrypto", reason="GOST 2015 support needs the gostcrypto package")
from gostcrypto import gostsignature  # noqa: E402

from signing import gost  # noqa: E402

pytestmark = pytest.mark.req("AC-25")
M1 = b"012345678901234567890123456789012345678901234567890123456789012"  # GOST R 34.11-2012 example 1
CONTENT = b'{"resourceType":"Bundle"}'


def test_streebog_matches_the_standard_examples() -> None:
    assert gost.streebog(M1, 256).hex() == "9d151eefd8590b89daa6ba6cb74af9275dd051026bb149a452fd84e5e57b5500"
    assert gost.streebog(M1, 512).hex().startswith("1b54d01a4af5b9d5cc3d86d68d285462b19abc2475222f35")


def test_gostcrypto_reproduces_the_gost_r_34_10_2012_appendix_a1_signature() -> None:
    curve = {
        "p": 0x8000000000000000000000000000000000000000000000000000000000000431,
        "a": 7,
        "b": 0x5FBFF498AA938CE739B8E022FBAFEF40563F6E6A3472FC2A514C0CE9DAE23B7E,
        "m": 0x8000000000000000000000000000000150FE8A1892976154C59CFC193ACCF5B3,
        "q": 0x8000000000000000000000000000000150FE8A1892976154C59CFC193ACCF5B3,
        "x": 2,
        "y": 0x08E2A8A0E65147D4BD6316030E16D19C85C97F0A9CA267122B96ABBCEA7E8FC8,
    }
    engine = gostsignature.new(gostsignature.MODE_256, curve)
    d = bytearray.fromhex("7A929ADE789BB9BE10ED359DD39A72C11B60961F49397EEE1D19CE9891EC3B28")
    e = bytearray.fromhex("2DFBC1B372D89A1188C09C52E0EEC61FCE52032AB1022E8E67ECE6672B043EE5")
    k = bytearray.fromhex("77105C9B20BCD3122823C8CF6FCC7B956DE33814E95B7FE64FED924594DCEAB3")
    r_s = bytes(engine.sign(d, e, k)).hex().upper()
    assert r_s == (
        "41AA28D2F1AB148280CD9ED56FEDA41974053554A42767B83AD043FD39DC0493"
        "01456C64BA4642A1653C235A98A60249BCD6D3F746B631DF928014F6C5BF9C40"
    )


@pytest.mark.parametrize("bits", [256, 512])
def test_sign_and_verify_use_rfc4491_byte_order(bits: int) -> None:
    key = gost.generate_key(bits)
    digest = gost.streebog(b"data", bits)
    signature = gost.sign_digest(key, digest)
    assert gost.verify_digest(key.public_key_le, digest, signature)
    half = len(signature) // 2
    # s || r with a little-endian digest: swapping halves or not reversing the digest must not verify.
    assert not gost.verify_digest(key.public_key_le, digest, signature[half:] + signature[:half])
    assert not gost.verify_digest(key.public_key_le, digest[::-1], signature)


def test_private_key_encoding_round_trips() -> None:
    key = gost.generate_key(256)
    assert gost.load_private_key(gost.private_key_der(key)) == key
    assert gost.load_private_key(b"\x30\x03\x02\x01\x00") is None


def test_test_pki_gost_certificate_is_recognised(signer_for: Callable[[str], Signer]) -> None:
    signer = signer_for("doctor-gost")
    assert isinstance(signer, GostSigner)
    assert key_kind(signer.signing_cert) is KeyKind.GOST2015_256


async def test_gost_cms_round_trip_and_tampering(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    signature = await sign_cms(CONTENT, signer_for("doctor-gost"))
    info = cms.ContentInfo.load(signature)["content"]["signer_infos"][0]
    assert info["signature_algorithm"]["algorithm"].dotted == gost.KZ_SIG_256
    assert info["digest_algorithm"]["algorithm"].dotted == gost.KZ_DIGEST_256
    status = await verify_cms(signature, CONTENT, trust, Expectations(iin="123456789019"))
    assert status.ok, status.summary()
    assert (await verify_cms(signature, CONTENT + b"x", trust)).reasons == (Reason.DIGEST_MISMATCH,)


async def test_gost_signer_refuses_sha256(signer_for: Callable[[str], Signer]) -> None:
    with pytest.raises(ValueError, match="streebog256"):
        await signer_for("doctor-gost").sign_raw(b"x", "sha256")
