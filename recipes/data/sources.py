"""Where the offline corpus's audio comes from: recorded audio shipped by Debian packages, text-to-speech voices,
and MIDI scores from music21's corpus rendered with a real-instrument SoundFont, or any folder of the user's audio.

Each source yields `Item`s. An item knows how to produce its waveform (`render`), and carries the `group` that the
train/valid/test split is made on: a speaker, a voice, a language, a music track or a score, so that the test split
holds speakers and pieces never heard in training.
"""

from __future__ import annotations

import dataclasses
import random
import re
import shutil
import subprocess
import tempfile
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile as sf

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".g722"}


@dataclasses.dataclass
class Item:
    """One recording to be converted. `render()` returns float32 `[T, C]` samples and their rate."""

    name: str  # unique, file-name safe
    category: str  # speech, music or sounds
    source: str  # what produced it (a package, a TTS engine)
    license: str
    group: str  # the unit the split is made on
    render: Callable[[], tuple[np.ndarray, int]]
    speaker: str = ""


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Decode any file soundfile reads; G.722 and other formats it cannot go through ffmpeg."""
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        return data, rate
    except (sf.LibsndfileError, RuntimeError):
        if shutil.which("ffmpeg") is None:
            raise
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "decoded.wav"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), str(wav)], check=True)
        data, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    return data, rate


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def file_items(paths: list[Path], category: str, source: str, license: str,
               group_of: Callable[[Path], str], speaker_of: Callable[[Path], str] = lambda p: "") -> list[Item]:
    return [
        Item(name=_safe(f"{source}-{group_of(p)}-{p.stem}"), category=category, source=source, license=license,
             group=f"{source}/{group_of(p)}", speaker=speaker_of(p), render=partial(read_audio, p))
        for p in sorted(paths)
    ]


def _glob(root: str, *patterns: str) -> list[Path]:
    base = Path(root)
    return sorted({p for pattern in patterns for p in base.glob(pattern)}) if base.is_dir() else []


def recorded_items() -> list[Item]:
    """Recorded human speech, music and sounds from Debian packages (missing packages simply give nothing)."""
    items: list[Item] = []
    # One speaker (Allison Smith) reading ~570 telephony prompts: the split is by prompt.
    root = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
    asterisk = _glob(str(root), "**/*.g722")
    items += file_items(asterisk, "speech", "asterisk-core-sounds-en", "CC-BY-SA-3.0",
                        group_of=lambda p: str(p.relative_to(root).with_suffix("")),
                        speaker_of=lambda p: "allison")
    # KTuberling: the same words spoken by a different person in each language: the split is by language.
    tuberling = [p for p in _glob("/usr/share/ktuberling/sounds", "*/*")
                 if p.suffix.lower() in AUDIO_SUFFIXES]
    items += file_items(tuberling, "speech", "ktuberling-data", "GPL-2.0-or-later",
                        group_of=lambda p: p.parent.name, speaker_of=lambda p: p.parent.name)
    alsa = _glob("/usr/share/sounds/alsa", "*.wav")
    items += file_items(alsa, "speech", "alsa-utils", "GPL-2.0-or-later", group_of=lambda p: "alsa",
                        speaker_of=lambda p: "alsa")
    wesnoth = _glob("/usr/share/games/wesnoth", "**/music/*.ogg")
    items += file_items(wesnoth, "music", "wesnoth-music", "GPL-2.0-or-later", group_of=lambda p: p.stem)
    freedesktop = [p for p in _glob("/usr/share/sounds/freedesktop/stereo", "*") if p.suffix in AUDIO_SUFFIXES]
    items += file_items(freedesktop, "sounds", "sound-theme-freedesktop", "GPL-2.0-or-later/CC-BY-SA-3.0",
                        group_of=lambda p: p.stem)
    return items


# ---- text-to-speech -------------------------------------------------------------------------------------------

TEXT_FILES = ("/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0",
              "/usr/share/common-licenses/MPL-2.0", "/usr/share/common-licenses/Artistic")


def sentences(limit: int, seed: int) -> list[str]:
    """English sentences of 6-30 words from texts every Debian system ships (the common licences)."""
    found: list[str] = []
    for name in TEXT_FILES:
        path = Path(name)
        if not path.is_file():
            continue
        text = re.sub(r"\s+", " ", path.read_text(encoding="utf-8", errors="ignore"))
        for sentence in re.split(r"(?<=[.;:!?])\s+", text):
            words = re.sub(r"[^A-Za-z0-9,.;:'\- ]", " ", sentence).split()
            if 6 <= len(words) <= 30 and sum(w.isupper() for w in words) < 3:
                found.append(" ".join(words))
    random.Random(seed).shuffle(found)
    return found[:limit]


def _synthesise(command: list[str], text: str) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "tts.wav"
        text_file = Path(tmp) / "text.txt"
        text_file.write_text(text + "\n", encoding="utf-8")
        args = [a.replace("{wav}", str(wav)).replace("{text}", str(text_file)) for a in command]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        data, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    return data, rate


def tts_voices() -> list[tuple[str, str, list[str]]]:
    """(engine, voice, command template) for every installed voice; {wav} and {text} are filled in."""
    voices = []
    if shutil.which("espeak-ng"):
        for accent in ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan"):
            for variant in ("m1", "m2", "m3", "m4", "m7", "f1", "f2", "f3", "f4", "f5"):
                voices.append(("espeak-ng", f"{accent}+{variant}",
                               ["espeak-ng", "-v", f"{accent}+{variant}", "-s", "{speed}", "-p", "{pitch}",
                                "-f", "{text}", "-w", "{wav}"]))
    if shutil.which("flite"):
        for voice in ("kal16", "slt", "awb", "rms"):
            voices.append(("flite", voice, ["flite", "-voice", voice, "-f", "{text}", "-o", "{wav}"]))
    if shutil.which("text2wave"):
        for voice in ("cmu_us_slt_arctic_hts", "kal_diphone"):
            if any(Path("/usr/share/festival/voices").glob(f"*/{voice}")):
                voices.append(("festival", voice, ["text2wave", "-eval", f"(voice_{voice})", "{text}",
                                                   "-o", "{wav}"]))
    return voices


def tts_items(count: int, seed: int) -> list[Item]:
    """`count` utterances spread over every installed voice, each with its own speed and pitch."""
    voices = tts_voices()
    if not voices:
        return []
    rng = random.Random(seed)
    items = []
    for index, text in enumerate(sentences(count, seed)):
        engine, voice, template = voices[index % len(voices)]
        speed, pitch = str(rng.randint(120, 210)), str(rng.randint(25, 75))
        command = [a.replace("{speed}", speed).replace("{pitch}", pitch) for a in template]
        items.append(Item(name=_safe(f"{engine}-{voice}-{index:05d}"), category="speech", source=engine,
                          license="synthetic (engine: GPL-3.0 espeak-ng / BSD flite / X11 festival)",
                          group=f"{engine}/{voice}", speaker=voice,
                          render=partial(_synthesise, command, text)))
    return items


# ---- MIDI rendered with a SoundFont ---------------------------------------------------------------------------

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
# General MIDI programs of real acoustic instruments: piano, organ, guitar, strings, brass, woodwinds, choir, harp.
PROGRAMS = (0, 1, 6, 19, 24, 25, 32, 40, 41, 42, 43, 46, 48, 52, 56, 57, 60, 68, 70, 71, 73)
COMPOSERS = ("bach", "beethoven", "mozart", "haydn", "monteverdi", "palestrina", "essenFolksong", "oneills1850")
MIDI_SECONDS = 60.0


def _render_score(path: str, programs: list[int]) -> tuple[np.ndarray, int]:
    from music21 import converter, instrument

    score = converter.parse(path)
    if hasattr(score, "scores"):  # an opus of many tunes: take the first
        score = score.scores[0]
    score = score.measures(1, 40)  # about a minute; rendering a whole mass takes minutes
    for index, part in enumerate(score.parts):
        for old in part.recurse().getElementsByClass(instrument.Instrument):
            old.activeSite.remove(old)
        part.insert(0, instrument.instrumentFromMidiProgram(programs[index % len(programs)]))
    with tempfile.TemporaryDirectory() as tmp:
        midi, wav = Path(tmp) / "score.mid", Path(tmp) / "score.wav"
        score.write("midi", fp=str(midi))
        subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", "24000", "-F", str(wav), SOUNDFONT,
                        str(midi)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        data, rate = sf.read(str(wav), dtype="float32", always_2d=True, frames=int(MIDI_SECONDS * 24000))
    return data, rate


def midi_items(count: int, seed: int) -> list[Item]:
    """`count` scores from music21's corpus, each part given a random acoustic instrument."""
    if shutil.which("fluidsynth") is None or not Path(SOUNDFONT).is_file():
        return []
    try:
        from music21 import corpus
    except ImportError:
        return []
    rng = random.Random(seed)
    paths = [str(p) for composer in COMPOSERS for p in corpus.getComposer(composer)]
    rng.shuffle(paths)
    items = []
    for path in paths[:count]:
        programs = rng.sample(PROGRAMS, 4)
        stem = _safe(Path(path).stem)
        items.append(Item(name=f"midi-{stem}-{'-'.join(map(str, programs))}", category="music",
                          source="music21+fluid-soundfont-gm", license="scores: public domain (music21 corpus); "
                          "SoundFont: MIT", group=f"midi/{stem}",
                          render=partial(_render_score, path, programs)))
    return items


# ---- the user's own audio -------------------------------------------------------------------------------------

def user_items(root: Path, category: str) -> list[Item]:
    """Every audio file under `root`; the split is by first-level sub-folder (a speaker in LibriSpeech or VCTK,
    an album in a music collection), or by file when the files lie directly in `root`."""
    paths = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES]

    def group_of(path: Path) -> str:
        relative = path.relative_to(root)
        return relative.parts[0] if len(relative.parts) > 1 else path.stem

    return [
        Item(name=_safe(str(p.relative_to(root).with_suffix(""))), category=category, source=f"user:{root.name}",
             license="the user's", group=f"user/{group_of(p)}", speaker=group_of(p),
             render=partial(read_audio, p))
        for p in sorted(paths)
    ]


def iter_chunks(samples: np.ndarray, rate: int, seconds: float) -> Iterator[np.ndarray]:
    """Long recordings in pieces of at most `seconds`, so that a trainer drawing one segment per file sees
    every minute of a long track as often as a minute of short clips."""
    size = int(seconds * rate)
    for start in range(0, len(samples), size):
        piece = samples[start:start + size]
        if start == 0 or len(piece) >= size // 4:
            yield piece
