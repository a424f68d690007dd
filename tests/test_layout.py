"""The storage layout module: keys round-trip, bad names are refused clearly, the README's table is true."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from quakestack import layout
from quakestack.errors import InvalidArgument
from quakestack.storage import ObjectStore

README = Path(__file__).resolve().parents[1] / "README.md"
WHEN = datetime(2026, 12, 2, 3, 4, 5, tzinfo=timezone.utc)

# Keys built by the function each README row names first; every row must match one of its function's keys.
EXAMPLES = {
    "upload_key": layout.upload_key("0f3a", "day.mseed"),
    "archive_key": layout.archive_key("archives/xn/2024/XN/N000/HHZ.D/XN.N000.00.HHZ.D.2024.061"),
    "manifest_key": layout.manifest_key("stead-small"),
    "dataset_file_key": layout.dataset_file_key("stead-small", layout.shard_dir("train", 7) + "/waveforms.hdf5"),
    "spec_key": layout.spec_key("train-1a2b"),
    "events_prefix": layout.events_prefix("train-1a2b") + "0000000042.json",
    "control_key": layout.control_key("train-1a2b"),
    "shard_result_key": layout.shard_result_key("ds-1a2b", layout.shard_dir("train", 7)),
    "dataset_writer_key": layout.dataset_writer_key("stead-small"),
    "legacy_history_key": layout.legacy_history_key("train-1a2b"),
    "checkpoint_key": layout.checkpoint_key("train-1a2b", "epoch-0003"),
    "epoch_checkpoint_key": layout.epoch_checkpoint_key("train-1a2b", 3),
    "evaluation_prefix": layout.evaluation_prefix("train-1a2b", "e1"),
    "tensorboard_key": layout.tensorboard_key("train-1a2b"),
    "content_weights_key": layout.content_weights_key("mag", "0" * 64),
    "card_key": layout.card_key("mag", 2),
    "aliases_key": layout.aliases_key("mag"),
    "log_batch_key": (layout.log_batch_key(layout.AUDIT_PREFIX, WHEN, "host-12", 3),
                      layout.log_batch_key(layout.INFERENCE_LOGS_PREFIX, WHEN, "host-12", 4)),
    "usage_key": layout.usage_key("ci"),
    "picks_key": layout.picks_key("cat1", "XX.STA..HH.2026.336"),
    "catalog_file_key": layout.catalog_file_key("cat1", "summary.json"),
    "catalog_evaluation_prefix": layout.catalog_evaluation_prefix("cat1", "e1") + "event_map.png",
}


def _readme_rows() -> list[tuple[str, list[str]]]:
    """(key pattern, functions named) of each row of the README's storage-layout table."""
    text = README.read_text()
    section = text[text.index("## Object storage layout"):]
    section = section[:section.index("\n## ", 5)]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and not cells[0].startswith("`---"):
            rows.append((cells[0].strip("`"), re.findall(r"`([a-z_0-9]+)`", cells[1])))
    return rows


def _pattern(row: str) -> re.Pattern[str]:
    """A README key pattern (`jobs/<job-id>/events/<nnnnnnnnnn>.json`, `{a,b}`) as a regular expression."""
    out = ""
    for token in re.split(r"(<[^>]+>|\{[^}]+\})", row):
        if token.startswith("<"):
            out += "[0-9]+" if set(token[1:-1]) == {"n"} else r"[^/]+"
        elif token.startswith("{"):
            out += "(" + "|".join(re.escape(t) for t in token[1:-1].split(",")) + ")"
        else:
            out += re.escape(token)
    return re.compile(out + "$")


def test_readme_table_names_a_layout_function_for_every_row_and_each_builds_its_row() -> None:
    rows = _readme_rows()
    assert len(rows) >= 17, rows
    for pattern, functions in rows:
        assert functions, f"README row {pattern} names no layout function"
        for name in functions:
            assert callable(getattr(layout, name, None)), f"README names layout.{name}, which does not exist"
        builder = functions[0]
        keys = EXAMPLES[builder] if isinstance(EXAMPLES[builder], tuple) else (EXAMPLES[builder],)
        assert any(_pattern(pattern).match(key) for key in keys), (pattern, builder, keys)
    named = {f for _, functions in rows for f in functions}
    assert set(EXAMPLES) <= named, set(EXAMPLES) - named


def test_checkpoint_numbers_are_zero_padded_and_parse_back() -> None:
    for epoch in (1, 12, 9999, 10000):
        key = layout.epoch_checkpoint_key("j1", epoch)
        label = layout.checkpoint_label(key)
        assert label == layout.epoch_label(epoch) and layout.label_epoch(label) == epoch
    stopped = layout.checkpoint_key("j1", layout.STOPPED)
    assert stopped == "jobs/j1/checkpoints/stopped.pt"
    assert layout.checkpoint_label(stopped) == layout.STOPPED and layout.label_epoch(layout.STOPPED) is None
    assert layout.checkpoint_label("jobs/j1/checkpoints/notes.txt") is None
    assert layout.checkpoint_label("jobs/j1/checkpoints/epoch-x.pt") is None
    assert layout.checkpoint_label("jobs/j1/eval/e1/epoch-0001.pt") is None
    assert layout.checkpoint_file_name("j1", 3) == "j1-epoch-0003.pt"


def test_names_and_keys_are_validated_with_a_clear_error() -> None:
    cases = [
        (lambda: layout.manifest_key("../other"), "dataset name '../other'"),
        (lambda: layout.manifest_key("/etc"), "dataset name '/etc'"),
        (lambda: layout.manifest_key(""), "dataset name ''"),
        (lambda: layout.upload_key("u1", "../../passwd"), "file name '../../passwd'"),
        (lambda: layout.upload_key("u1", "a/b.mseed"), "file name 'a/b.mseed'"),
        (lambda: layout.spec_key("../models"), "job id '../models'"),
        (lambda: layout.content_weights_key("a..b", "0" * 64), "model name 'a..b'"),
        (lambda: layout.content_weights_key("m", "not-a-digest"), "64 hex digits"),
        (lambda: layout.aliases_key("/abs"), "model name '/abs'"),
        (lambda: layout.catalog_file_key("..", "summary.json"), "catalog id '..'"),
        (lambda: layout.catalog_file_key("c1", "../x"), "catalog file must be one of"),
        (lambda: layout.dataset_file_key("ds", "../../jobs/x/job.json"), "'..' part"),
        (lambda: layout.dataset_file_key("ds", "/etc/passwd"), "must be relative"),
        (lambda: layout.artifact_key("j1", "checkpoints/epoch-0001.pt"), "must lie under eval/"),
        (lambda: layout.artifact_key("j1", "eval/../checkpoints/epoch-0001.pt"), "'..' part"),
        (lambda: layout.checkpoint_key("j1", "../x"), "checkpoint label must be"),
        (lambda: layout.epoch_label(0), "epoch must be at least 1"),
        (lambda: layout.log_batch_key("jobs/", WHEN, "h", 1), "log prefix must be"),
        (lambda: layout.picks_key("c1", "../x"), "'..' part"),
    ]
    for build, fragment in cases:
        with pytest.raises(InvalidArgument) as error:
            build()
        assert fragment in str(error.value), (fragment, str(error.value))


def test_keys_round_trip_through_real_storage(store: ObjectStore) -> None:
    """What the layout writes is what listing finds and parsing reads back (SeaweedFS, not a dict)."""
    job = "layout-test-1"
    for label in ("epoch-0001", "epoch-0002", layout.STOPPED):
        store.put_bytes(layout.checkpoint_key(job, label), label.encode())
    store.put_bytes(layout.evaluation_prefix(job, "e1") + "metrics.json", b"{}")
    labels = sorted(filter(None, (layout.checkpoint_label(o.key) for o in store.list(layout.checkpoints_prefix(job)))))
    assert labels == ["epoch-0001", "epoch-0002", layout.STOPPED]
    assert store.get_bytes(layout.artifact_key(job, "eval/e1/metrics.json")) == b"{}"
    store.delete_prefix(layout.job_prefix(job))
    assert store.list(layout.job_prefix(job)) == []


def test_the_gateway_saves_a_checkpoint_under_the_name_the_cli_uses() -> None:
    from gateway.app import download_name

    assert download_name(None, {"job_id": "train-1a2b", "epoch": "3"}) == layout.checkpoint_file_name("train-1a2b", 3)
    assert download_name(None, {"job_id": "train-1a2b", "path": "eval/e1/residuals.png"}) == "residuals.png"
    assert download_name(None, {"job_id": "train-1a2b", "path": "tensorboard.tar.gz"}) == \
        "train-1a2b-tensorboard.tar.gz"
