"""QR payload: round trips, refusal of tampered codes, scanner quirks, size and charset."""

from __future__ import annotations

import inspect
import re
import uuid

import pytest
import qrcode
import qrcode.constants
import qrcode.util
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import qrpayload
from app.core.qrpayload import QR_ALPHANUMERIC, Payload, PayloadError, decode, encode

STANDARD_FORMS = ["address", "house", "resident", "unit"]
FORMS = [*STANDARD_FORMS, "unit_staff", "rental_house"]  # forms are data: longer ids happen
BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

record_ids = st.uuids().map(str)
forms = st.sampled_from(FORMS)
versions = st.integers(min_value=0, max_value=2**31)
keys = st.one_of(st.none(), st.binary(min_size=1, max_size=64))


@given(record_ids, forms, versions, keys)
def test_round_trip(record_id: str, form: str, version: int, key: bytes | None) -> None:
    text = encode(record_id, form, version, key)
    assert decode(text, key) == Payload(record_id, form, version)


@given(record_ids, forms, versions, keys)
def test_fits_qr_alphanumeric_mode(
    record_id: str, form: str, version: int, key: bytes | None
) -> None:
    text = encode(record_id, form, version, key)
    assert set(text) <= QR_ALPHANUMERIC
    assert qrcode.util.QRData(text.encode("ascii")).mode == qrcode.util.MODE_ALPHA_NUM


@given(record_ids, st.sampled_from(STANDARD_FORMS), versions, keys)
def test_standard_form_codes_fit_60_characters(
    record_id: str, form: str, version: int, key: bytes | None
) -> None:
    """60 characters fit QR version 3 (29x29 modules) at error-correction level M."""
    text = encode(record_id, form, version, key)
    assert len(text) <= 60
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make(fit=True)
    assert qr.version <= 3


@given(record_ids, forms, versions, keys, st.sampled_from(["", "\n", "\r\n", "\t", "  "]))
def test_scanner_case_and_whitespace_tolerated(
    record_id: str, form: str, version: int, key: bytes | None, tail: str
) -> None:
    text = encode(record_id, form, version, key)
    expected = Payload(record_id, form, version)
    assert decode(text.lower() + tail, key) == expected
    assert decode(" " + text.swapcase() + tail, key) == expected


@pytest.mark.parametrize(
    "wrap",
    [
        "gridcollect://r/{}",
        "GRIDCOLLECT://R/{}",
        "https://grid.example.cn/r/{}",
        "https://grid.example.cn/app/r/{}?src=label#top",
        "http://10.0.0.5:8080/r/{}",
    ],
)
def test_payload_inside_url(wrap: str) -> None:
    rid = str(uuid.uuid4())
    text = encode(rid, "house", 7)
    assert decode(wrap.format(text)) == Payload(rid, "house", 7)
    assert decode(wrap.format(text.replace(":", "%3A"))) == Payload(rid, "house", 7)


def _substitutions(text: str):
    for i, old in enumerate(text):
        for new in sorted(QR_ALPHANUMERIC - {old}):
            yield i, text[:i] + new + text[i + 1 :]


@settings(max_examples=25, deadline=None)
@given(record_ids, forms, versions)
def test_checksum_catches_every_single_substitution(record_id, form, version) -> None:
    text = encode(record_id, form, version)
    for _, tampered in _substitutions(text):
        with pytest.raises(PayloadError):
            decode(tampered)


@settings(max_examples=25, deadline=None)
@given(record_ids, forms, versions, st.binary(min_size=1, max_size=32))
def test_keyed_code_refuses_every_single_substitution(record_id, form, version, key) -> None:
    text = encode(record_id, form, version, key)
    for _, tampered in _substitutions(text):
        with pytest.raises(PayloadError):
            decode(tampered, key)


@settings(max_examples=50)
@given(record_ids, forms, versions, keys, st.data())
def test_changed_id_or_version_is_an_integrity_failure(record_id, form, version, key, data) -> None:
    """A well-formed field changed to another valid value is caught by the check itself."""
    text = encode(record_id, form, version, key)
    parts = text.split(":")
    field = data.draw(st.sampled_from([2, 3]))
    i = data.draw(st.integers(0, len(parts[field]) - 1))
    new = data.draw(st.sampled_from(BASE32).filter(lambda c: c != parts[field][i]))
    parts[field] = parts[field][:i] + new + parts[field][i + 1 :]
    with pytest.raises(PayloadError) as err:
        decode(":".join(parts), key)
    assert err.value.code == "qr.integrity"


def test_forged_code_with_recomputed_checksum_is_refused_when_keyed() -> None:
    key = b"deployment secret"
    rid = str(uuid.uuid4())
    forged = encode(rid, "resident", 9)  # a forger can compute the plain checksum
    with pytest.raises(PayloadError) as err:
        decode(forged, key)
    assert err.value.code == "qr.integrity"


def test_wrong_key_is_refused() -> None:
    text = encode(str(uuid.uuid4()), "unit", 2, b"key one")
    with pytest.raises(PayloadError) as err:
        decode(text, b"key two")
    assert err.value.code == "qr.integrity"


def test_signed_code_without_key_says_so() -> None:
    text = encode(str(uuid.uuid4()), "unit", 2, b"key one")
    with pytest.raises(PayloadError) as err:
        decode(text)
    assert err.value.code == "qr.key"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "6901234567892",  # a product barcode
        "https://example.com/",
        "https://example.com/item/123",
        "ftp://example.com/r/GC1:HOUSE:0:1:0",
        "WIFI:S:net;T:WPA;P:pass;;",
        "GCX:HOUSE",
    ],
)
def test_foreign_codes_are_not_ours(text: str) -> None:
    with pytest.raises(PayloadError) as err:
        decode(text)
    assert err.value.code == "qr.not_ours"


def test_newer_payload_version_asks_for_an_update() -> None:
    text = encode(str(uuid.uuid4()), "house", 1)
    with pytest.raises(PayloadError) as err:
        decode("GC2" + text[3:])
    assert err.value.code == "qr.version"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-1],  # truncated check
        lambda t: t.rsplit(":", 1)[0],  # check missing
        lambda t: t + ":X",  # extra field
        lambda t: t.replace(":", "::", 1),  # empty field
        lambda t: t[:-3] + "IIU",  # I and U are not Crockford digits
    ],
)
def test_damaged_codes_are_malformed(mutate) -> None:
    text = encode(str(uuid.uuid4()), "house", 1)
    with pytest.raises(PayloadError) as err:
        decode(mutate(text))
    assert err.value.code == "qr.malformed"


def test_module_example_decodes() -> None:
    example = re.search(r"GC1:RESIDENT:\S+", qrpayload.__doc__ or "")
    assert example is not None
    assert decode(example.group()).form == "resident"


def test_encoder_takes_no_record_data() -> None:
    params = inspect.signature(encode).parameters
    assert list(params) == ["record_id", "form", "version", "key"]
    for name in ("record_id", "form"):
        assert params[name].annotation in ("str", str)
    assert params["version"].annotation in ("int", int)


PERSON = {
    "name": "张伟",
    "name_pinyin": "ZHANGWEI",
    "id_number": "11010519491231002X",
    "phone": "13912345678",
    "address": "北京市朝阳区建国路88号",
}


@given(record_ids, forms, versions, keys)
def test_payload_holds_no_personal_values(record_id, form, version, key) -> None:
    text = encode(record_id, form, version, key)
    for value in PERSON.values():
        value = value.upper()
        # Any 6-character run of a personal value (1 in 10**9 chance by accident per window).
        for start in range(max(1, len(value) - 5)):
            assert value[start : start + 6] not in text


@pytest.mark.parametrize(
    "args",
    [
        ("not-a-uuid", "house", 1),
        (str(uuid.uuid4()), "House", 1),
        (str(uuid.uuid4()), "house-1", 1),
        (str(uuid.uuid4()), "", 1),
        (str(uuid.uuid4()), "house", -1),
        (str(uuid.uuid4()), "house", 2**32),
        (str(uuid.uuid4()), "house", True),
    ],
)
def test_encode_rejects_bad_arguments(args) -> None:
    with pytest.raises(ValueError):
        encode(*args)


def test_empty_key_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        encode(str(uuid.uuid4()), "house", 1, b"")
    with pytest.raises(ValueError):
        decode("GC1:HOUSE:0:1:0", b"")


@pytest.mark.parametrize(
    "code",
    ["qr.not_ours", "qr.version", "qr.malformed", "qr.integrity", "qr.key", "qr.unknown_record"],
)
def test_every_code_has_chinese_and_english_text(code: str) -> None:
    err = PayloadError(code)
    assert str(err) == code
    assert re.search(r"[\u4e00-\u9fff]", err.message())
    assert re.search(r"[\u4e00-\u9fff]", err.message("zh"))
    english = err.message("en")
    assert english.isascii() and english != err.message("zh")
