import dataclasses
import json
import struct
import zlib
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiocodec.api import compress, decompress
from audiocodec.errors import AudioCodecError, FormatError
from audiocodec.format import bitstream, entropy
from tiny_models import tiny_codec

CODEC = tiny_codec()
VALID = compress(np.random.default_rng(0).standard_normal(3000).astype(np.float32) * 0.1, 8000, model=CODEC)


def test_round_trip_of_header_and_payload():
    header, payload = bitstream.unpack(VALID)
    assert header.model_id == CODEC.model_id() and header.original_length == 3000
    assert bitstream.pack(header, payload) == VALID


@pytest.mark.parametrize("data,message", [
    (b"", "empty file"),
    (b"AC", "truncated"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", "not an audiocodec file"),
    (VALID[:-1], "truncated"),
    (VALID[:20], "truncated"),
    (VALID + b"\x00", "unexpected bytes"),
])
def test_damaged_files_are_named(data, message):
    with pytest.raises(FormatError, match=message):
        bitstream.unpack(data)


def test_flipped_bit_fails_the_crc():
    damaged = bytearray(VALID)
    damaged[len(damaged) // 2] ^= 0x10
    with pytest.raises(FormatError, match="CRC"):
        bitstream.unpack(bytes(damaged))


def test_unknown_version_is_refused():
    damaged = bytearray(VALID)
    damaged[4:6] = struct.pack("<H", 9)
    with pytest.raises(FormatError, match="unsupported format version 9"):
        bitstream.unpack(bytes(damaged))


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_absurd_sizes_with_a_valid_crc_are_refused_before_allocating():
    header, payload = bitstream.unpack(VALID)
    header.length = 10**15
    with mock.patch.object(bitstream.Header, "validate", lambda self: None):  # pack() would refuse it
        forged = bitstream.pack(header, payload)
    with pytest.raises(FormatError, match="length is 1000000000000000"):
        bitstream.unpack(forged)


def test_version_2_spends_under_50_bytes_on_everything_but_the_codes():
    header, payload = bitstream.unpack(VALID)
    assert len(VALID) - len(payload) < 50
    json_header = json.dumps(dataclasses.asdict(header), separators=(",", ":"))
    assert len(json_header) > 200  # what version 1 spent on the header alone


def test_every_header_field_round_trips_including_segment_scales():
    header = bitstream.Header(model_id="0123456789abcdef", sample_rate=48000, channels=2, frame_rate=150.0, bins=1024,
                              n_q=16, frames=300, length=96000, original_rate=44100, original_channels=1,
                              original_length=88200, bandwidth=24.0, scales=[0.5, 0.125])
    assert bitstream.unpack(bitstream.pack(header, b"codes"))[0] == header
    for gain in (0.25, 31.5):  # float32 values, stored exactly
        with_gain = dataclasses.replace(header, scales=None, gain=gain, fixed_width=True)
        assert bitstream.unpack(bitstream.pack(with_gain, b"codes"))[0] == with_gain
    for gain in (0.0, 1e4, float("nan")):
        with pytest.raises(FormatError, match="level gain"):
            bitstream.pack(dataclasses.replace(header, gain=gain), b"codes")


def _version_1(header: bitstream.Header, payload: bytes, model_name: str, make_json=json.dumps) -> bytes:
    """A file as audiocodec 0.x wrote it (docs/format.md, version 1): JSON header, u32 lengths."""
    if header.fixed_width:  # version 1 had range coding only: code the same codes so (the tiny model's tables)
        codes = entropy.unpack_fixed(payload, header.bins, header.n_q, header.frames)
        tables = entropy.probability_tables(CODEC.code_frequencies[: header.n_q].numpy())
        payload = entropy.encode_codes(codes, tables)
    assert header.gain is None
    fields = {k: v for k, v in dataclasses.asdict(header).items() if k not in ("fixed_width", "gain", "silence")}
    fields |= {"model_name": model_name}
    raw = make_json(fields).encode()
    return _with_crc(b"ACDC" + struct.pack("<HI", 1, len(raw)) + raw + struct.pack("<I", len(payload)) + payload)


def test_version_1_files_still_decode_to_the_same_audio():
    header, payload = bitstream.unpack(VALID)
    old = _version_1(header, payload, "tiny")
    old_header, old_payload = bitstream.unpack(old)
    assert old_header.model_name == "tiny" and not old_header.fixed_width
    assert dataclasses.replace(old_header, model_name=None) == dataclasses.replace(header, fixed_width=False)
    torch.testing.assert_close(decompress(old, model=CODEC)[0], decompress(VALID, model=CODEC)[0], rtol=0, atol=0)


@pytest.mark.parametrize("make_json", [
    lambda fields: json.dumps(fields | {"scales": [10**400]}),  # a number too large for a float
    lambda fields: json.dumps(fields).replace('"frames": ', '"frames": ' + "9" * 5000),  # too long to parse
    lambda fields: "[" * 100_000 + "]" * 100_000,  # nesting deeper than Python's recursion limit
    lambda fields: json.dumps(fields | {"gain": 0.5}),  # version 2's fields have no place in version 1
])
def test_hostile_version_1_json_gives_a_format_error(make_json):
    header, payload = bitstream.unpack(VALID)
    old = _version_1(header, payload, "tiny", make_json)
    with pytest.raises(FormatError):
        bitstream.unpack(old)


@pytest.mark.parametrize("changes", [{"original_length": 86400 * 384000, "original_rate": 384000},
                                     {"sample_rate": 16000}, {"frame_rate": 1.0}])
def test_header_fields_that_disagree_with_the_model_are_refused(changes):
    header, payload = bitstream.unpack(VALID)
    forged = bitstream.pack(dataclasses.replace(header, **changes), payload)
    with pytest.raises(FormatError, match="corrupted header"):
        decompress(forged, model=CODEC)


def test_pack_refuses_what_float32_cannot_carry():
    header, payload = bitstream.unpack(VALID)
    for scales in ([1e300], [1e-50]):
        with pytest.raises(FormatError, match="scales"):
            bitstream.pack(dataclasses.replace(header, scales=scales), payload)


@pytest.mark.parametrize("tamper,message", [
    (lambda blob: blob[:14] + b"\x80" + blob[15:], "unknown flags"),
    (lambda blob: blob[:15] + b"\xff" * 11 + blob[15:], "more than 10 bytes"),
    # the sample rate (8000: c0 3e, from byte 15) written one byte longer (c0 be 00)
    (lambda blob: blob[:16] + bytes([blob[16] | 0x80, 0]) + blob[17:], "shortest form"),
])
def test_malformed_version_2_fields_are_refused(tamper, message):
    forged = tamper(VALID[:-4])
    with pytest.raises(FormatError, match=message):
        bitstream.unpack(_with_crc(forged))


def test_skewed_tables_take_fewer_bytes_than_uniform():
    rng = np.random.default_rng(0)
    frequencies = np.array([[2.0**-k for k in range(16)]] * 2)
    codes = np.stack([rng.choice(16, size=4000, p=frequencies[0] / frequencies[0].sum()) for _ in range(2)])
    skewed = entropy.encode_codes(codes, entropy.probability_tables(frequencies))
    uniform = entropy.encode_codes(codes, entropy.probability_tables(np.zeros((2, 16))))
    assert len(skewed) < 0.6 * len(uniform)
    assert len(uniform) <= 2 * 4000 * 4 / 8 + 8  # uniform tables cost no more than fixed 4-bit packing
    np.testing.assert_array_equal(
        entropy.decode_codes(skewed, entropy.probability_tables(frequencies), 2, 4000), codes)


def test_a_code_never_seen_in_training_is_still_codable():
    frequencies = np.zeros((1, 16))
    frequencies[0, 0] = 1000.0
    codes = np.array([[0, 15, 0, 7]])
    tables = entropy.probability_tables(frequencies)
    np.testing.assert_array_equal(entropy.decode_codes(entropy.encode_codes(codes, tables), tables, 1, 4), codes)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_files_give_only_the_projects_errors(data):
    blob = bytearray(VALID)
    action = data.draw(st.sampled_from(["flip", "truncate", "extend", "overwrite"]))
    if action == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] ^= 1 << data.draw(st.integers(0, 7))
    elif action == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif action == "extend":
        blob += data.draw(st.binary(min_size=1, max_size=64))
    else:
        i = data.draw(st.integers(0, len(blob) - 1))
        chunk = data.draw(st.binary(min_size=1, max_size=16))
        blob[i : i + len(chunk)] = chunk
    if bytes(blob) == VALID:
        return
    try:
        wav, rate = decompress(bytes(blob), model=CODEC)
    except AudioCodecError:
        return
    # A mutation that keeps the file valid (e.g. only the CRC's own bytes compensate) must still decode sanely.
    assert rate > 0 and torch.isfinite(wav).all()


@pytest.mark.parametrize("bins", [2, 3, 1000, 1024, 65536])
def test_fixed_width_packing_round_trips_across_blocks(bins, monkeypatch):
    monkeypatch.setattr(entropy, "_FIXED_BLOCK", 16)  # several blocks, the last one partial
    codes = np.random.default_rng(bins).integers(0, bins, size=(3, 37))
    codes[0, 0], codes[-1, -1] = bins - 1, 0
    packed = entropy.pack_fixed(codes, bins)
    assert len(packed) == (codes.size * entropy.code_width(bins) + 7) // 8
    np.testing.assert_array_equal(entropy.unpack_fixed(packed, bins, 3, 37), codes)


def test_fixed_width_payloads_of_the_wrong_size_or_padding_are_refused():
    packed = entropy.pack_fixed(np.array([[1, 2, 3]]), 1024)  # 30 bits: two padding bits in the last byte
    with pytest.raises(FormatError, match="padding"):
        entropy.unpack_fixed(packed[:-1] + bytes([packed[-1] | 0x80]), 1024, 1, 3)
    with pytest.raises(FormatError, match="4 bytes for 4 codes"):
        entropy.unpack_fixed(packed, 1024, 1, 4)


def test_audio_the_tables_fit_badly_is_packed_at_a_fixed_width_instead():
    codec = tiny_codec()
    audio = np.random.default_rng(1).standard_normal(4000).astype(np.float32) * 0.1
    with torch.no_grad():
        codes = codec.encode(torch.from_numpy(audio)[None, None]).codes[0].numpy()
    width = entropy.code_width(codec.quantizer.bins)
    # Tables that put almost all their weight on codes the audio does not use: range coding would cost far more
    # than `width` bits a code.
    rare = np.ones(codec.quantizer.bins)
    rare[np.unique(codes)] = 1e-6
    codec.code_frequencies.copy_(torch.from_numpy(np.tile(rare, (codec.quantizer.n_q, 1))))
    data = compress(audio, 8000, model=codec)
    header, payload = bitstream.unpack(data)
    assert header.fixed_width and len(payload) == (codes.size * width + 7) // 8
    assert len(entropy.encode_codes(codes, entropy.probability_tables(codec.code_frequencies.numpy()))) > 2 * len(
        payload)
    with torch.no_grad():
        expected = codec.decode(codec.encode(torch.from_numpy(audio)[None, None]))[0]
    torch.testing.assert_close(decompress(data, model=codec)[0], expected, rtol=0, atol=1e-6)
    # Tables that fit the codes: range coding wins, and the flag stays clear.
    fitting = np.full((codec.quantizer.n_q, codec.quantizer.bins), 1e-6)
    for level, row in enumerate(codes):
        np.add.at(fitting[level], row, 1.0)
    codec.code_frequencies.copy_(torch.from_numpy(fitting))
    header, payload = bitstream.unpack(compress(audio, 8000, model=codec))
    assert not header.fixed_width and len(payload) < (codes.size * width + 7) // 8


@pytest.mark.parametrize("cut", [None, 4])
def test_a_forged_payload_that_is_not_the_coding_of_whole_codes_is_refused(cut):
    """The range decoder reads zeros past the end: an empty or shortened payload, given a valid checksum, decoded."""
    codec, wav = tiny_codec(), np.sin(np.arange(3000) / 7).astype(np.float32)
    codes = codec.encode(torch.from_numpy(wav)[None, None]).codes[0]
    for level, row in enumerate(codes):  # tables that fit these codes, so that range coding beats fixed width
        codec.code_frequencies[level] = torch.bincount(row, minlength=codec.quantizer.bins) + 0.01
    header, payload = bitstream.unpack(compress(wav, 8000, model=codec, loudness_range=None))
    assert not header.fixed_width  # range-coded
    forged = bitstream.pack(header, b"" if cut is None else payload[:-cut])
    with pytest.raises(FormatError, match="corrupted payload"):
        decompress(forged, model=codec)
