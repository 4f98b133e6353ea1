"""Forged `.ac` headers with valid CRCs: every field at its extremes is refused in one line (exit 1) before any
work, or gives a file that decodes to what the header claims. `info` checks the same things fast."""

import math
import struct
import time
import zlib

import numpy as np
import pytest
import soundfile as sf
import torch

from audiocodec import api
from audiocodec.cli import entry
from audiocodec.format import bitstream
from tiny_models import tiny_codec

INTEGERS = ("sample_rate", "channels", "bins", "n_q", "frames", "length", "original_rate", "original_channels",
            "original_length")


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def forge(fields: dict, payload: bytes, flags: int | None = None) -> bytes:
    """A version-2 file of `fields` (a header's, unchecked) and `payload`, with a CRC that matches."""
    if flags is None:
        flags = (1 if fields["scales"] is not None else 0) | (2 if fields["fixed_width"] else 0) | (
            4 if fields["gain"] is not None else 0)
    body = bytearray(b"ACDC" + struct.pack("<H", 2) + bytes.fromhex(fields["model_id"]) + bytes([flags]))
    for name in INTEGERS:
        body += _varint(fields[name])
    body += struct.pack("<ff", fields["frame_rate"], fields["bandwidth"])
    if flags & 1:
        scales = fields["scales"] or []
        body += _varint(len(scales)) + struct.pack(f"<{len(scales)}f", *scales)
    if flags & 4:
        body += struct.pack("<f", fields["gain"] if fields["gain"] is not None else 1.0)
    body += _varint(len(payload)) + payload
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    root = tmp_path_factory.mktemp("forged")
    model = tiny_codec()
    rng = np.random.default_rng(0)
    audio = torch.from_numpy(0.2 * rng.standard_normal((1, 4000)).astype(np.float32))
    with torch.no_grad():  # tables that fit the codes, as training leaves them: the payload is range-coded
        codes = model.encode(audio[None]).codes[0]
        for level in range(codes.shape[0]):
            model.code_frequencies[level] = torch.bincount(codes[level], minlength=16).float() + 20
    model.save_pretrained(root / "model")
    data = api.compress(audio, 8000, model=model, bandwidth=8.0, loudness_range=None)
    header, payload = bitstream.unpack(data)
    assert not header.fixed_width
    return root, vars(header).copy(), payload


def _forgeries(fields: dict, payload: bytes):
    """(name, bytes) of every field at its extremes, each with a valid CRC."""
    limits = {"sample_rate": bitstream.MAX_SAMPLE_RATE, "channels": bitstream.MAX_CHANNELS,
              "bins": bitstream.MAX_BINS, "n_q": bitstream.MAX_CODEBOOKS, "frames": 10**9, "length": 10**12,
              "original_rate": bitstream.MAX_SAMPLE_RATE, "original_channels": bitstream.MAX_CHANNELS,
              "original_length": 10**12}
    for name in INTEGERS:
        for value in sorted({0, 1, 2, fields[name] - 1, fields[name] + 1, 2 * fields[name], limits[name],
                             limits[name] + 1, 2**32, 2**64 - 1, 2**70 - 1}):
            if value >= 0 and value != fields[name]:
                yield f"{name}={value}", forge({**fields, name: value}, payload)
    for name in ("frame_rate", "bandwidth"):
        for value in (0.0, -1.0, 1e-45, 1e-3, 0.5 * fields[name], 2 * fields[name], 1e6, 3.4e38, math.inf,
                      -math.inf, math.nan):
            yield f"{name}={value}", forge({**fields, name: value}, payload)
    for model_id in ("0" * 16, "f" * 16):
        yield f"model_id={model_id}", forge({**fields, "model_id": model_id}, payload)
    for flags in (1, 2, 3, 4, 5, 6, 7, 8, 0x80, 0xFF):
        yield f"flags={flags:#x}", forge(fields, payload, flags)
    for scales in ([], [1.0], [1.0] * 1000, [0.0], [math.nan], [math.inf], [1e-30], [1e30]):
        yield f"{len(scales)} scales of {scales[:1]}", forge({**fields, "scales": scales}, payload)
    for gain in (0.0, 1e-4, 1e-3, 1.0, 1e3, 1e4, -1.0, math.inf, math.nan):
        yield f"gain={gain}", forge({**fields, "gain": gain}, payload)
    for size in (0, 4, len(payload) // 2 // 4 * 4, len(payload) - 4, len(payload) - 1, len(payload) + 4):
        shorter = (payload + bytes(8))[:size]
        yield f"payload of {size} bytes", forge(fields, shorter)
    yield "fixed-width flag on a range-coded payload", forge({**fields, "fixed_width": True}, payload)


def _run(capsys, *argv) -> tuple[int, str]:
    capsys.readouterr()
    status = entry.main([str(arg) for arg in argv])
    return status, capsys.readouterr().err


def test_every_forged_field_is_refused_in_one_line_or_decodes_to_what_the_header_claims(valid, capsys, tmp_path):
    root, fields, payload = valid
    counts = {"refused": 0, "decoded": 0}
    for name, data in _forgeries(fields, payload):
        source, out = tmp_path / "forged.ac", tmp_path / "out.wav"
        source.write_bytes(data)
        status, err = _run(capsys, "decompress", source, out, "--model", root / "model", "--force")
        if status:
            assert status == 1 and err.startswith("audiocodec: error: ") and err.count("\n") == 1, (name, err)
            counts["refused"] += 1
            continue
        header, _ = bitstream.unpack(data)
        info = sf.info(out)
        assert (info.channels, info.samplerate, info.frames) == (
            header.original_channels, header.original_rate, header.original_length), name
        assert np.isfinite(sf.read(out)[0]).all(), name
        counts["decoded"] += 1
    print(f"forged headers with valid CRCs: {counts['refused']} refused in one line, {counts['decoded']} decoded "
          f"to what they claim")
    assert counts["refused"] > 100 and counts["decoded"] >= 1


def test_a_forged_channel_count_decodes_to_the_mono_mix_in_every_channel(valid, capsys, tmp_path):
    """The format records the input's channel count, up to 64; a 64-channel input coded by a mono model is a file
    audiocodec writes, and decodes to 64 copies of the mono decoding."""
    root, fields, payload = valid
    (tmp_path / "mono.ac").write_bytes(forge(fields, payload))
    (tmp_path / "wide.ac").write_bytes(forge({**fields, "original_channels": 64}, payload))
    for name in ("mono", "wide"):
        assert _run(capsys, "decompress", tmp_path / f"{name}.ac", tmp_path / f"{name}.wav", "--model",
                    root / "model")[0] == 0
    mono, wide = sf.read(tmp_path / "mono.wav")[0], sf.read(tmp_path / "wide.wav")[0]
    assert wide.shape == (len(mono), 64)
    np.testing.assert_array_equal(wide, np.repeat(mono[:, None], 64, axis=1))


def test_a_long_header_over_a_short_payload_is_refused_at_once_by_info_and_decompress(valid, capsys, tmp_path):
    root, fields, payload = valid
    hours = 24 * 3600 * 8000
    forged = forge({**fields, "length": hours, "original_length": hours, "frames": hours // 8}, payload)
    (tmp_path / "long.ac").write_bytes(forged)
    for argv in (("info", tmp_path / "long.ac", "--model", root / "model"),
                 ("decompress", tmp_path / "long.ac", tmp_path / "long.wav", "--model", root / "model")):
        start = time.perf_counter()
        status, err = _run(capsys, *argv)
        assert status == 1 and "cannot hold" in err and err.count("\n") == 1, err
        assert time.perf_counter() - start < 2


def test_info_verify_decodes_the_codes_and_says_the_file_is_whole(valid, capsys, tmp_path):
    root, fields, payload = valid
    (tmp_path / "good.ac").write_bytes(forge(fields, payload))
    capsys.readouterr()
    assert entry.main(["info", "--verify", str(tmp_path / "good.ac"), "--model", str(root / "model")]) == 0
    assert "the file is whole" in capsys.readouterr().out
    damaged = bytearray(payload)
    damaged[len(damaged) // 2] ^= 0x40  # a forgery: the CRC is recomputed, so only decoding the codes can tell
    (tmp_path / "bad.ac").write_bytes(forge(fields, bytes(damaged)))
    assert _run(capsys, "info", tmp_path / "bad.ac", "--model", root / "model")[0] == 0  # the sizes still agree
    status, err = _run(capsys, "info", "--verify", tmp_path / "bad.ac", "--model", root / "model")
    assert status == 1 and "corrupted payload" in err
    status, err = _run(capsys, "info", "--verify", tmp_path / "good.ac")  # the embedded model did not code it
    assert status == 1 and "--model" in err


def test_info_refuses_a_forged_day_long_header_on_an_embedded_model_file_without_loading_the_model(capsys, tmp_path):
    data = api.compress(torch.zeros(1, 2400), 24000)
    header, payload = bitstream.unpack(data)
    day = 24 * 3600 * 24000
    fields = {**vars(header), "length": day, "original_length": day, "frames": api.default_model().num_frames(day)}
    (tmp_path / "day.ac").write_bytes(forge(fields, payload))
    status, err = _run(capsys, "info", tmp_path / "day.ac")
    assert status == 1 and "cannot hold" in err
