"""SeisBench's PhaseNet/EQTransformer as zoo architectures: same state_dict as plain SeisBench, the zoo's
picking targets are SeisBench's ProbabilisticLabeller's, fine-tuning groups, and the benchmark tasks."""

from __future__ import annotations

import numpy as np
import pytest
import seisbench.generate as sbg
import seisbench.models as sbm
import torch

from quakestack.models.losses import compute_loss, pick_targets
from quakestack.models.seisbench_pickers import SEISBENCH_PHASENET, serving_card, zoo_architecture
from quakestack.models.zoo import build_model, get_architecture
from quakestack.training.benchmark_tasks import benchmark_tasks, detection, mcc
from quakestack.training.finetune import optimizer_parameters


def test_pick_targets_are_seisbench_probabilistic_labels() -> None:
    """The zoo's Gaussian targets (sigma 10 samples, noise = 1 - P - S) equal ProbabilisticLabeller's on the
    same onsets: in the window, near its edges, and missing (noise windows)."""
    length = 3001
    onsets = [(500.0, 900.0), (10.0, 2990.0), (1500.0, 1560.0), (-20.0, 3010.0), (np.nan, np.nan), (700.0, np.nan)]
    labeller = sbg.ProbabilisticLabeller(sigma=10, shape="gaussian", dim=0, label_columns={
        "trace_p_arrival_sample": "P", "trace_s_arrival_sample": "S"})
    expected = []
    for p, s in onsets:
        state = {"X": (np.zeros((3, length), np.float32), {"trace_p_arrival_sample": p,
                                                            "trace_s_arrival_sample": s})}
        labeller(state)
        y, _ = state["y"]
        order = [labeller.labels.index(c) for c in ("P", "S", "Noise")]
        expected.append(y[order])
    ours = pick_targets(torch.tensor([p for p, _ in onsets]), torch.tensor([s for _, s in onsets]), length)
    np.testing.assert_allclose(ours.numpy(), np.stack(expected), atol=1e-6)


@pytest.mark.parametrize("name,cls,small", [("seisbench_phasenet", sbm.PhaseNet, {}),
                                            ("seisbench_eqtransformer", sbm.EQTransformer,
                                             {"in_samples": 3000, "lstm_blocks": 1})])
def test_a_checkpoint_is_a_seisbench_state_dict(name: str, cls: type, small: dict) -> None:
    """The trainable subclass adds no parameter: its state_dict loads strictly into plain SeisBench, which
    (fed as annotate feeds it) gives the same probabilities."""
    torch.manual_seed(0)
    model, hp, spec = build_model(name, small)
    model.eval()
    plain = cls(**get_architecture(name).model_args(hp)).eval()
    plain.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, spec.n_samples) * 50
    with torch.no_grad():
        ours = model(x)["sequence"]
        theirs = plain(plain.annotate_batch_pre(x.clone(), {}))
    if name == "seisbench_phasenet":
        theirs = theirs[:, [plain.labels.index(c) for c in "PSN"]]
    else:
        theirs = torch.stack([theirs[1], theirs[2], 1 - theirs[0]], dim=1)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
    assert set(compute_loss(get_architecture(name).loss, model(x), {
        "p_sample": torch.tensor([100.0, np.nan]), "s_sample": torch.tensor([300.0, np.nan])}).shape) == set()


def test_model_args_round_trip_and_refusals() -> None:
    """A SeisBench JSON's model_args map onto the job's hyper-parameters and back; a model this version cannot
    train (other components) is refused naming the key."""
    args = sbm.PhaseNet(phases="PSN", sampling_rate=50).get_model_args()
    hp = SEISBENCH_PHASENET.hparams_from_model_args(args)
    assert hp["phases"] == "PSN" and hp["sampling_rate"] == 50.0
    assert SEISBENCH_PHASENET.input_spec_for(hp).sampling_rate == 50.0
    card = serving_card({"architecture": "seisbench_phasenet", "hyper_parameters": hp})
    assert card["architecture"] == "seisbench:PhaseNet" and card["hyper_parameters"]["component_order"] == "ZNE"
    assert zoo_architecture(card) == ("seisbench_phasenet", hp)
    sbm.PhaseNet(**card["hyper_parameters"])  # SeisBench takes the card's model_args as they are
    with pytest.raises(ValueError, match="component_order"):
        SEISBENCH_PHASENET.hparams_from_model_args({**args, "component_order": "Z12"})


def test_freeze_and_lower_rate_for_pretrained_layers() -> None:
    model, _, _ = build_model("seisbench_phasenet", {})
    base = {"learning_rate": 1e-3, "pretrained_lr_factor": 0.1, "freeze": "none"}
    groups = list(optimizer_parameters(model, base))
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(1e-4)]
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.out.parameters()}
    groups = list(optimizer_parameters(model, {**base, "freeze": "encoder"}))
    trained = {id(p) for g in groups for p in g["params"]}
    assert not any(id(p) in trained for p in model.inc.parameters())
    model.train()
    assert not model.in_bn.training and model.up_branch.training  # frozen BatchNorm statistics stay put
    zoo, _, _ = build_model("phasenet", {"n_samples": 3001})
    with pytest.raises(ValueError, match="parameter groups"):
        optimizer_parameters(zoo, base)


def test_benchmark_tasks_on_known_predictions() -> None:
    """Perfect probabilities score AUC = MCC = 1 and zero residual; a picker shifted by 0.2 s has MAE 0.2 s."""
    n, length, rate = 40, 1000, 100.0
    p = np.where(np.arange(n) < 30, 200.0 + np.arange(n), np.nan)
    s = p + 300.0
    sequence = pick_targets(torch.tensor(p), torch.tensor(s), length).numpy()
    out = benchmark_tasks(sequence, p, s, rate)
    assert out["detection_auc"] == pytest.approx(1.0) and out["detection_mcc"] == pytest.approx(1.0)
    assert out["phase_mcc"] == pytest.approx(1.0) and out["onset_mae_s"] == pytest.approx(0.0)
    shifted = pick_targets(torch.tensor(p + 20), torch.tensor(s + 20), length).numpy()
    out = benchmark_tasks(shifted, p, s, rate)
    assert out["p_onset_mean_s"] == pytest.approx(0.2) and out["onset_mae_s"] == pytest.approx(0.2)
    assert out["p_onset_within_0_5s"] == 1.0 and out["p_onset_within_0_1s"] == 0.0
    assert mcc(5, 0, 5, 0) == 1.0 and mcc(0, 5, 0, 5) == -1.0
    random = detection(np.random.default_rng(0).random(2000), np.arange(2000) % 2 == 0)
    assert abs(random["detection_auc"] - 0.5) < 0.05
