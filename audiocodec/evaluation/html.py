"""`index.html`: the evaluation as a page to read and listen to, beside report.md.

Numbers alone did not settle the discriminator trade-off (docs/default-model.md): the page puts the rate-distortion
plots and the tables next to the sound itself. For each file of the listening set, the original and every codec at
every bandwidth play side by side, each with its spectrogram on one colour scale.

The folder is self-contained: every link is relative (`listen/…`), the audio is FLAC (16-bit, at the original's
rate and channel count), which Chromium, Firefox and Safari play in an `<audio>` element, and nothing is fetched
from elsewhere. A small inline script counts the players and images that loaded and those that failed, shows the
count at the top of the page (so a broken copy of the folder is noticed) and records it on `<body>` as
`data-loaded` / `data-failed`, which the test reads from a headless browser's DOM.
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import soundfile as sf
import torch

from .evaluate import CodecRunner, Evaluation, Listening, Result
from .report import Average, categories, table_rows

LISTEN_FOLDER = "listen"
SPECTROGRAM_SECONDS = 10.0  # spectrograms show at most this much of the file (the player has it all)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; background: #fff; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.plots img { max-width: 100%; }
.file { margin: 1em 0 2em; }
.grid { display: flex; flex-wrap: wrap; gap: 0.8em; }
.card { border: 1px solid #ddd; border-radius: 4px; padding: 0.4em; width: 300px; }
.card h4 { margin: 0 0 0.3em; font-size: 0.9em; }
.card img { width: 100%; display: block; }
.card audio { width: 100%; }
.na { color: #888; font-style: italic; padding: 2em 0; text-align: center; }
#status { font-size: 0.85em; color: #555; }
#status.bad { color: #b00; font-weight: bold; }
"""

# Counts loaded and failed players and images; an <audio> counts once its metadata is read (`preload="metadata"`).
_SCRIPT = """
(function () {
  var loaded = 0, failed = 0, items = document.querySelectorAll('audio, img');
  function show() {
    document.body.dataset.loaded = loaded; document.body.dataset.failed = failed;
    var s = document.getElementById('status');
    s.textContent = loaded + ' of ' + items.length + ' players and images loaded' +
                    (failed ? ', ' + failed + ' failed' : '');
    s.className = failed ? 'bad' : '';
  }
  items.forEach(function (el) {
    var done = false;
    function ok() { if (!done) { done = true; loaded++; show(); } }
    function bad() { if (!done) { done = true; failed++; show(); } }
    if (el.tagName === 'IMG') {
      if (el.complete) { (el.naturalWidth > 0 ? ok : bad)(); }
      else { el.addEventListener('load', ok); el.addEventListener('error', bad); }
    } else {
      if (el.readyState >= 1) { ok(); }
      else if (el.error) { bad(); }
      else {
        el.addEventListener('loadedmetadata', ok);
        el.addEventListener('error', bad, true);
        var source = el.querySelector('source');
        if (source) { source.addEventListener('error', bad); }
      }
    }
  });
  show();
})();
"""


def write_html(out: Path, evaluation: Evaluation, table: list[Average], meta: dict, runners: list[CodecRunner],
               bandwidths: list[float]) -> Path:
    """Write `out/index.html` and its `listen/` folder (replacing an earlier one); return the page's path."""
    from .plots import rate_distortion_panels

    folder = out / LISTEN_FOLDER
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for stale in out.glob("rate_distortion_*.png"):  # an overwritten report's, whose categories may differ
        stale.unlink()
    plots = []
    for category in categories(table):
        plot = out / f"rate_distortion_{re.sub(r'[^A-Za-z0-9_-]+', '_', category)}.png"
        if rate_distortion_panels(table, plot, category):
            plots.append((category, plot))
    body = ["<h1>Evaluation report</h1>",
            "<p id=\"status\">loading…</p>",
            "<p>" + _esc(f"Model: {meta['model']}; data: {meta['data']}; {len(evaluation.files)} file(s) evaluated, "
                         f"{len(evaluation.skipped)} skipped; codecs: {', '.join(r.name for r in runners)}; "
                         f"created {meta['created']} by audiocodec {meta['audiocodec_version']}.") + "</p>",
            "<p>Achieved kb/s counts the whole file; payload kb/s the coded audio alone. n/a: not measurable "
            "(docs/evaluation.md says when); (n=k): the mean covers k of the row's files. The <i>original</i> row "
            "is the DNSMOS of the input files themselves. Full results: <a href=\"report.json\">report.json</a>, "
            "<a href=\"report.md\">report.md</a>.</p>"]
    if plots:
        body += ["<h2>Rate and distortion</h2>",
                 "<p>Each metric against the bitrate each codec achieved, per category (ViSQOL runs in speech mode on "
                 "speech and in audio mode elsewhere, so the two scales are best read apart).</p>"]
        body += [f"<h3>{_esc(category)}</h3><div class=\"plots\"><img src=\"{plot.name}\" "
                 f"alt=\"{_esc(category)}: each metric against the achieved bitrate\"></div>"
                 for category, plot in plots]
    body.append("<h2>Averages</h2>")
    for category in categories(table):
        header, rows = table_rows(table, category)
        body += [f"<h3>{_esc(category)}</h3>", "<table>",
                 "<tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr>",
                 *("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows), "</table>"]
    if evaluation.listening:
        body += ["<h2>Listen</h2>",
                 "<p>Each file's original and every decoding, aligned with it; spectrograms of the first "
                 f"{SPECTROGRAM_SECONDS:g} s, one colour scale (dB below full scale).</p>"]
        for index, heard in enumerate(evaluation.listening):
            body += _listening_section(folder, index, heard, runners, bandwidths, evaluation)
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>audiocodec evaluation</title><style>{_STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + f"\n<script>{_SCRIPT}</script>\n</body></html>\n")
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _listening_section(folder: Path, index: int, heard: Listening, runners: list[CodecRunner],
                       bandwidths: list[float], evaluation: Evaluation) -> list[str]:
    stem = f"{index:02d}_" + re.sub(r"[^A-Za-z0-9._-]+", "_", Path(heard.name).stem)[:60]
    scores = {(r.codec, r.bandwidth): r for f in evaluation.files if f.name == heard.name for r in f.results}
    cards = [_card(folder, f"{stem}_original", "original", heard.reference, heard.sample_rate, "")]
    for kbps in bandwidths:
        for runner in runners:
            audio = heard.decoded.get((runner.name, kbps))
            result = scores.get((runner.name, kbps))
            title = f"{runner.name} at {kbps:g} kb/s"
            if audio is None:
                reason = result.note if result is not None and result.note else "not run"
                cards.append(f"<div class=\"card\"><h4>{_esc(title)}</h4><div class=\"na\">n/a: {_esc(reason)}"
                             "</div></div>")
                continue
            detail = "" if result is None else _summary(result)
            safe = re.sub(r"[^A-Za-z0-9._-]+", "_", runner.name)
            cards.append(_card(folder, f"{stem}_{safe}_{kbps:g}kbps", title, audio, heard.sample_rate, detail))
    return [f"<div class=\"file\"><h3>{_esc(heard.name)} <small>({_esc(heard.category)})</small></h3>",
            "<div class=\"grid\">", *cards, "</div></div>"]


def _card(folder: Path, stem: str, title: str, audio: torch.Tensor, sample_rate: int, detail: str) -> str:
    from .plots import spectrogram_image

    flac, png = folder / f"{stem}.flac", folder / f"{stem}.png"
    sf.write(flac, audio.clamp(-1, 1).T.numpy(), sample_rate, subtype="PCM_16", format="FLAC")
    spectrogram_image(audio.mean(0)[: int(SPECTROGRAM_SECONDS * sample_rate)], sample_rate, png)
    relative = f"{LISTEN_FOLDER}/"
    return (f"<div class=\"card\"><h4>{_esc(title)}</h4>"
            f"<audio controls preload=\"metadata\"><source src=\"{relative}{flac.name}\" type=\"audio/flac\">"
            "</audio>"
            f"<img src=\"{relative}{png.name}\" alt=\"spectrogram: {_esc(title)}\">"
            + (f"<div><small>{_esc(detail)}</small></div>" if detail else "") + "</div>")


def _summary(result: Result) -> str:
    from .report import DECIMALS, LABELS

    parts = [f"{result.kbps:.2f} kb/s"] if result.kbps is not None else []
    parts += [f"{LABELS[name]} {value:.{DECIMALS[name]}f}" for name, value in result.metrics.items()
              if value is not None and name in ("pesq_wb", "visqol", "dnsmos_ovrl", "mel_distance")]
    return ", ".join(parts)


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)

