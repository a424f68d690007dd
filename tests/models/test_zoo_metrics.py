"""Metrics on hand-computed examples; losses; targets from SeisBench-style metadata; dataset fit checks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from quakestack.models import get_architecture
from quakestack.models.losses import CREIME_NOISE_VALUE, get_loss
from quakestack.models.metrics import MetricAccumulator, compute_metrics
from quakestack.models.targets import batch_extras, batch_targets, check_dataset_fits, targets_from_metadata


def test_magnitude_metrics_by_hand() -> None:
    true = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    pred = np.array([1.5, 2.0, 2.0, 4.5, 9.0])  # the NaN target row is ignored
    m = compute_metrics("magnitude", {"magnitude": pred}, {"magnitude": true})
    # residuals true - pred: -0.5, 0, 1, -0.5
    assert m["n"] == 4
    assert m["rmse"] == pytest.approx(math.sqrt(1.5 / 4))
    assert m["mae"] == pytest.approx(0.5)
    assert m["r2"] == pytest.approx(1 - 1.5 / 5.0)
    assert m["residual_mean"] == pytest.approx(0.0)
    assert m["residual_std"] == pytest.approx(math.sqrt(1.5 / 4))


def test_classification_metrics_by_hand() -> None:
    true = np.array([0, 0, 0, 1, 1, 2, 2, 2, -100])
    pred = np.array([0, 0, 1, 1, 2, 2, 2, 0, 1])
    m = compute_metrics("classification", {"label": pred}, {"label": true})
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["precision_per_class"] == pytest.approx([2 / 3, 1 / 2, 2 / 3])
    assert m["recall_per_class"] == pytest.approx([2 / 3, 1 / 2, 2 / 3])
    assert m["f1_per_class"] == pytest.approx([2 / 3, 1 / 2, 2 / 3])
    assert m["f1_macro"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert m["class_names"] == ["earthquake", "explosion", "noise"]


def test_detection_metrics_from_logits() -> None:
    true = np.array([1, 1, 1, 0, 0])
    logits = np.array([[0, 1], [0, 1], [1, 0], [0, 1], [1, 0]], dtype=float)  # TP TP FN FP TN
    cluster_logits = np.array([[1, 0], [0, 1], [1, 0], [0, 1], [0, 1]], dtype=float)
    m = compute_metrics(
        "detection",
        {"logits": logits, "cluster_logits": cluster_logits},
        {"label": true, "cluster": np.array([0, 0, 0, -100, -100])},
    )
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["confusion_matrix"] == [[1, 1], [1, 2]]
    assert m["cluster_accuracy"] == pytest.approx(2 / 3)


def test_precision_of_a_never_predicted_class_is_zero() -> None:
    m = compute_metrics("classification", {"label": np.array([0, 0])}, {"label": np.array([0, 1])})
    assert m["precision_per_class"] == [0.5, 0.0, 0.0]


def test_accumulator_matches_one_shot() -> None:
    acc = MetricAccumulator("magnitude")
    acc.update({"magnitude": torch.tensor([1.0, 2.0])}, {"magnitude": torch.tensor([1.0, 3.0])})
    acc.update({"magnitude": torch.tensor([4.0])}, {"magnitude": torch.tensor([4.0])})
    assert len(acc) == 3
    assert acc.compute()["rmse"] == pytest.approx(math.sqrt(1 / 3))


def test_losses() -> None:
    out = {"magnitude": torch.tensor([1.0, 2.0, 0.0]), "magnitude_log_var": torch.tensor([0.0, math.log(4.0), 0.0])}
    tgt = {"magnitude": torch.tensor([2.0, 4.0, float("nan")])}
    assert get_loss("mse")(out, tgt).item() == pytest.approx((1 + 4) / 2)
    expected = (0.5 * 1 + 0.5 * (4 / 4) + 0.5 * math.log(4.0)) / 2
    assert get_loss("gaussian_nll")(out, tgt).item() == pytest.approx(expected)
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    ce = get_loss("cross_entropy")({"logits": logits}, {"label": torch.tensor([0, -100])})
    assert ce.item() == pytest.approx(-math.log(math.exp(2) / (math.exp(2) + 1)))
    with pytest.raises(KeyError, match="known: .*mse"):
        get_loss("huber")


def test_creime_trace_loss_targets() -> None:
    trace = torch.full((2, 6), CREIME_NOISE_VALUE)
    trace[0, 2:] = 3.0  # event M3 with P at sample 2: a perfect prediction
    loss = get_loss("creime_trace_mse")(
        {"magnitude_trace": trace, "magnitude": trace[:, -1]},
        {"magnitude": torch.tensor([3.0, float("nan")]), "p_arrival_sample": torch.tensor([2.0, float("nan")])},
    )
    assert loss.item() == pytest.approx(0.0)


METADATA = pd.DataFrame(
    {
        "trace_name": ["a", "b", "c", "d"],
        "source_magnitude": [2.5, None, 3.1, 1.0],
        "trace_category": ["earthquake_local", "noise", "explosion", "noise"],
        "location_cluster": [2, None, 1, 0],
        "trace_p_arrival_sample": [500, None, 700, None],
        "trace_s_arrival_sample": [900, None, None, None],
        "path_p_travel_sec": [4.2, None, 6.0, None],
    }
)


def test_targets_from_metadata() -> None:
    mag = targets_from_metadata(get_architecture("magnet"), METADATA)
    np.testing.assert_allclose(mag["magnitude"], [2.5, np.nan, 3.1, np.nan])  # noise has no magnitude
    cls = batch_targets(get_architecture("event_classifier"), METADATA)
    assert cls["label"].tolist() == [0, 2, 1, 2]
    det = batch_targets(get_architecture("convnetquake"), METADATA)
    assert det["label"].tolist() == [1, 0, 1, 0]
    assert det["cluster"].tolist() == [2, -100, 1, -100]
    extras = batch_extras(get_architecture("maginfonet"), METADATA)
    assert set(extras) == {"p_arrival_sample", "s_arrival_sample", "p_travel_s"}
    assert extras["p_travel_s"][0].item() == pytest.approx(4.2) and torch.isnan(extras["s_arrival_sample"][2])
    assert batch_extras(get_architecture("magnet"), METADATA) is None


def test_check_dataset_fits() -> None:
    cols = list(METADATA.columns)
    cats = ["earthquake_local", "noise"]
    assert check_dataset_fits(get_architecture("magnet"), cols, cats) is None
    reason = check_dataset_fits(get_architecture("magnet"), ["trace_name", "trace_category"], ["noise"])
    assert "source_magnitude" in reason
    assert "only noise" in check_dataset_fits(get_architecture("magnet"), cols, ["noise"])
    assert "no noise windows" in check_dataset_fits(get_architecture("convnetquake"), cols, ["earthquake_local"])
    assert check_dataset_fits(get_architecture("convnetquake"), cols, cats) is None
    reason = check_dataset_fits(get_architecture("event_classifier"), cols, ["earthquake_local"])
    assert "fewer than two" in reason
    assert check_dataset_fits(get_architecture("event_classifier"), cols, ["earthquake", "quarry blast"]) is None
    reason = check_dataset_fits(get_architecture("maginfonet"), ["source_magnitude", "trace_category"], cats)
    assert "trace_p_arrival_sample" in reason
