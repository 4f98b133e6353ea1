from audiocodec.evaluation.evaluate import METRICS, FileReport, Result
from audiocodec.evaluation.report import Mean, averages, markdown_table


def _result(codec, kbps, pesq, mel, note=None):
    metrics = dict.fromkeys(METRICS)
    metrics.update(pesq_wb=pesq, mel_distance=mel)
    return Result(codec, 6.0, None if note else kbps, None if note else kbps - 1, metrics=metrics, note=note)


def _file(name, category, *results):
    return FileReport(name, category, category == "speech", 1.0, 16000, 1, {}, list(results))


FILES = [
    _file("a", "speech", _result("ours", 6.0, 3.0, 1.0), _result("opus", 7.0, 2.0, 2.0)),
    _file("b", "speech", _result("ours", 8.0, 4.0, 3.0), _result("opus", 0, None, None, note="n/a here")),
    _file("c", "music", _result("ours", 4.0, None, 2.0), _result("opus", 9.0, None, 4.0)),
]


def test_averages_skip_not_applicable_values_and_count_what_they_cover():
    table = {(a.codec, a.category): a for a in averages(FILES)}
    ours = table[("ours", "all")]
    assert ours.n_files == 3 and ours.kbps == Mean(6.0, 3)
    assert ours.metrics["pesq_wb"] == Mean(3.5, 2)  # music has no PESQ: skipped, not counted as 0
    assert ours.metrics["mel_distance"] == Mean(2.0, 3) and ours.metrics["stoi"] == Mean(None, 0)
    opus = table[("opus", "all")]
    assert opus.n_files == 2 and opus.kbps == Mean(8.0, 2) and opus.metrics["pesq_wb"] == Mean(2.0, 1)
    assert table[("opus", "speech")].metrics["mel_distance"] == Mean(2.0, 1)
    assert table[("ours", "music")].metrics["pesq_wb"] == Mean(None, 0)


def test_markdown_shows_na_and_partial_counts():
    lines = markdown_table(averages(FILES)).splitlines()
    assert lines[0].startswith("| codec | nominal kb/s | achieved kb/s | payload kb/s | PESQ-wb | STOI |")
    assert lines[2] == "| ours | 6 | 6.00 | 5.00 | 3.50 (n=2) | n/a | n/a | 2.000 | n/a | 3 |"
    assert lines[3] == "| opus | 6 | 8.00 | 7.00 | 2.00 (n=1) | n/a | n/a | 3.000 | n/a | 2 |"
    music = markdown_table(averages(FILES), "music").splitlines()
    assert music[2] == "| ours | 6 | 4.00 | 3.00 | n/a | n/a | n/a | 2.000 | n/a | 1 |"
