"""SeisBench's PhaseNet and EQTransformer as zoo architectures, so the trainer fine-tunes them like any other.

The model classes are subclasses of SeisBench's own that add no parameter: their ``state_dict`` keys are
plain SeisBench's, so a checkpoint *is* a SeisBench state_dict, a registered version serves through the
``seisbench:<Class>`` adapter and exports with SeisBench's ``save``. ``forward`` applies the model's own
normalisation (``annotate_batch_pre``) and returns what the training loop expects: ``pick_logits`` and
``sequence`` in P, S, noise order (PhaseNet), or the detection/P/S logits for EQTransformer's BCE loss.

Hyper-parameter names are SeisBench's ``model_args`` names, so a model's JSON maps onto a job and back.
SeisBench is imported only when a model is built: the zoo table loads without it.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from functools import cache
from typing import Any

import torch
from torch import Tensor, nn

from quakestack.models.spec import ArchitectureSpec, HyperParameter, InputSpec, Task

PREFIX = "seisbench:"
PICK_ORDER = ("P", "S", "N")  # the zoo's picking order (losses.pick_targets, metrics.pick_metrics)
FREEZE_CHOICES = ("none", "encoder")
# model_args the platform's datasets always give (3 components ZNE) and that SeisBench writes: anything else is
# a model this version cannot fine-tune (it may still be served as-is).
FIXED_MODEL_ARGS: dict[str, Any] = {"component_order": "ZNE", "in_channels": 3, "grouping": "instrument",
                                    "filter_args": None, "filter_kwargs": None}
_NORM = ("std", "peak")


@dataclasses.dataclass(frozen=True)
class SeisBenchArchitecture(ArchitectureSpec):
    """A zoo architecture backed by a SeisBench class; its hyper-parameters are that class's model_args."""

    seisbench_class: str = ""
    fixed_args: tuple[tuple[str, Any], ...] = ()  # model_args with one supported value (classes, ...)
    supports_parameter_groups: bool = True  # freeze / pretrained_lr_factor apply

    def input_spec_for(self, hparams: Mapping[str, Any]) -> InputSpec:
        changes: dict[str, Any] = {}
        if "in_samples" in hparams:
            changes["n_samples"] = int(hparams["in_samples"])
        if "sampling_rate" in hparams:
            changes["sampling_rate"] = float(hparams["sampling_rate"])
        return dataclasses.replace(self.input_spec, **changes)

    @property
    def card_architecture(self) -> str:
        return PREFIX + self.seisbench_class

    def model_args(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """SeisBench's model_args for these (resolved) hyper-parameters: what ``save`` writes and the card keeps."""
        return {**FIXED_MODEL_ARGS, **dict(self.fixed_args), **self.resolve_hparams(hparams)}

    def hparams_from_model_args(self, model_args: Mapping[str, Any]) -> dict[str, Any]:
        """The job's hyper-parameters for a SeisBench JSON's model_args; ValueError for one this version cannot
        train (another component order, class count, filter...), naming the key and both values."""
        known = {hp.name for hp in self.hyper_parameters}
        fixed = {**FIXED_MODEL_ARGS, **dict(self.fixed_args)}
        for key, value in model_args.items():
            if key in known:
                continue
            if key in fixed and _same(value, fixed[key]):
                continue
            if key in fixed:
                raise ValueError(f"{self.seisbench_class} with {key}={value!r} cannot be fine-tuned here "
                                 f"(supported: {key}={fixed[key]!r})")
            if key in IGNORED_MODEL_ARGS:
                continue
            raise ValueError(f"{self.seisbench_class} model_args key {key!r} is not supported for fine-tuning")
        return self.resolve_hparams({k: v for k, v in model_args.items() if k in known})


IGNORED_MODEL_ARGS = frozenset({"default_args", "citation", "_weights_docstring", "_weights_metadata"})


def _same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, (list, tuple)) and "".join(map(str, a)) == b)


def _check(x: Tensor, channels: int, samples: int, name: str) -> None:
    if x.ndim != 3 or x.shape[1] != channels or x.shape[2] != samples:
        raise ValueError(f"{name} takes [batch, {channels}, {samples}] windows, got {list(x.shape)}")


class _FineTuning:
    """Mixin: parameter groups for fine-tuning (a lower learning rate for the pretrained layers, or a frozen
    encoder whose BatchNorm statistics stay those it was trained with)."""

    ENCODER: tuple[str, ...] = ()
    HEAD: tuple[str, ...] = ()
    _frozen: bool = False

    def parameter_groups(self, lr: float, factor: float = 1.0, freeze: str = "none") -> list[dict[str, Any]]:
        """Optimizer groups: the output head at ``lr``, every other trainable layer at ``lr * factor``;
        ``freeze="encoder"`` takes the encoder out of training altogether."""
        if freeze not in FREEZE_CHOICES:
            raise ValueError(f"freeze must be one of {FREEZE_CHOICES}, got {freeze!r}")
        self._frozen = freeze == "encoder"
        head, body = [], []
        for name, param in self.named_parameters():  # type: ignore[attr-defined]
            top = name.split(".", 1)[0]
            if self._frozen and top in self.ENCODER:
                param.requires_grad_(False)
                continue
            (head if top in self.HEAD else body).append(param)
        self.train(self.training)  # type: ignore[attr-defined]  # put a frozen encoder's BatchNorms in eval mode
        groups = [{"params": head, "lr": lr}]
        if body:
            groups.append({"params": body, "lr": lr * factor})
        return groups

    def train(self, mode: bool = True):  # type: ignore[no-untyped-def]
        super().train(mode)  # type: ignore[misc]
        if self._frozen:
            for name in self.ENCODER:
                getattr(self, name).eval()
        return self


@cache
def phasenet_class() -> type[nn.Module]:
    import seisbench.models as sbm

    class TrainablePhaseNet(_FineTuning, sbm.PhaseNet):
        """SeisBench PhaseNet returning the zoo's picking outputs (P, S, noise order)."""

        ENCODER = ("inc", "in_bn", "down_branch")
        HEAD = ("out",)

        def forward(self, x: Tensor, extras: dict[str, Tensor] | None = None) -> dict[str, Tensor]:  # type: ignore[override]
            _check(x, self.in_channels, self.in_samples, "PhaseNet")
            logits = super().forward(self.annotate_batch_pre(x, {}), logits=True)
            order = [list(self.labels).index(p) for p in PICK_ORDER]
            logits = logits[:, order]
            return {"pick_logits": logits, "sequence": torch.softmax(logits.float(), dim=1)}

    return TrainablePhaseNet


@cache
def eqtransformer_class() -> type[nn.Module]:
    import seisbench.models as sbm

    class TrainableEQTransformer(_FineTuning, sbm.EQTransformer):
        """SeisBench EQTransformer returning detection/P/S logits, and a P, S, 1 - detection sequence."""

        ENCODER = ("encoder", "res_cnn_stack", "bi_lstm_stack", "transformer_d0", "transformer_d")
        HEAD = ("conv_d", "pick_convs")

        def forward(self, x: Tensor, extras: dict[str, Tensor] | None = None) -> dict[str, Tensor]:  # type: ignore[override]
            _check(x, self.in_channels, self.in_samples, "EQTransformer")
            detection, *picks = super().forward(self.annotate_batch_pre(x.clone(), {}), logits=True)
            by_phase = dict(zip(self.labels[1:], picks, strict=True))
            logits = torch.stack([detection, by_phase["P"], by_phase["S"]], dim=1)
            probs = torch.sigmoid(logits.float())
            return {"eqt_logits": logits, "sequence": torch.stack([probs[:, 1], probs[:, 2], 1 - probs[:, 0]], 1)}

    return TrainableEQTransformer


def _phase_orders(letters: str) -> tuple[str, ...]:
    return tuple("".join(p) for p in itertools.permutations(letters))


def _common_hps() -> tuple[HyperParameter, ...]:
    return (
        HyperParameter("sampling_rate", "float", 100.0, 1.0, 1000.0, description="sampling rate in Hz (input spec)"),
        HyperParameter("norm", "choice", "std", choices=_NORM, description="window normalisation (SeisBench's)"),
        HyperParameter("norm_amp_per_comp", "bool", False, description="normalise each component by its peak"),
        HyperParameter("norm_detrend", "bool", False, description="detrend each window before normalising"),
    )


def _build_phasenet(hp: dict[str, Any]) -> nn.Module:
    return phasenet_class()(**SEISBENCH_PHASENET.model_args(hp))


def _build_eqtransformer(hp: dict[str, Any]) -> nn.Module:
    return eqtransformer_class()(**SEISBENCH_EQTRANSFORMER.model_args(hp))


SEISBENCH_PHASENET = SeisBenchArchitecture(
    name="seisbench_phasenet",
    task=Task.PICKING,
    description="SeisBench's PhaseNet (fine-tunable from a pretrained version); versions serve and export as "
    "seisbench:PhaseNet",
    input_spec=InputSpec(n_samples=3001, components="ZNE", sampling_rate=100.0),
    outputs=("pick_logits", "sequence"),
    loss="pick_cross_entropy",
    metrics=("p_precision", "p_recall", "p_f1", "p_residual_mean", "p_residual_std", "s_precision", "s_recall",
             "s_f1", "s_residual_mean", "s_residual_std"),
    hyper_parameters=(*_common_hps(),
                      HyperParameter("phases", "choice", "NPS", choices=_phase_orders("NPS"),
                                     description="order of the output channels (SeisBench's labels)")),
    labels_required=("trace_p_arrival_sample", "trace_s_arrival_sample"),
    build=_build_phasenet,
    reference="Zhu & Beroza (2019), PhaseNet, GJI 216(1); Woollam et al. (2022), SeisBench, SRL 93(3)",
    class_names=PICK_ORDER,
    seisbench_class="PhaseNet",
    fixed_args=(("classes", 3),),
)

SEISBENCH_EQTRANSFORMER = SeisBenchArchitecture(
    name="seisbench_eqtransformer",
    task=Task.PICKING,
    description="SeisBench's EQTransformer (detection, P and S); versions serve and export as "
    "seisbench:EQTransformer",
    input_spec=InputSpec(n_samples=6000, components="ZNE", sampling_rate=100.0),
    outputs=("eqt_logits", "sequence"),
    loss="eqt_bce",
    metrics=SEISBENCH_PHASENET.metrics,
    hyper_parameters=(*_common_hps(),
                      HyperParameter("in_samples", "choice", 6000, choices=(3000, 6000, 12000),
                                     description="window length in samples (input spec)"),
                      HyperParameter("phases", "choice", "PS", choices=("PS",),
                                     description="picked phases (SeisBench's labels after Detection)"),
                      HyperParameter("lstm_blocks", "int", 3, 1, 8, description="residual BiLSTM blocks"),
                      HyperParameter("drop_rate", "float", 0.1, 0.0, 0.9, description="dropout rate"),
                      HyperParameter("original_compatible", "bool", False,
                                     description="layout of the original EQTransformer weights")),
    labels_required=("trace_p_arrival_sample", "trace_s_arrival_sample"),
    build=_build_eqtransformer,
    reference="Mousavi et al. (2020), Earthquake Transformer, Nat. Commun. 11, 3952; Woollam et al. (2022), "
    "SeisBench, SRL 93(3)",
    class_names=PICK_ORDER,
    seisbench_class="EQTransformer",
    fixed_args=(("classes", 2),),
)

BY_CLASS: dict[str, SeisBenchArchitecture] = {a.seisbench_class: a for a in (SEISBENCH_PHASENET,
                                                                               SEISBENCH_EQTRANSFORMER)}


def supported_classes() -> list[str]:
    return sorted(BY_CLASS)


def for_class(name: str) -> SeisBenchArchitecture:
    """The zoo architecture of a SeisBench class name; KeyError listing the supported ones."""
    try:
        return BY_CLASS[name.removeprefix(PREFIX)]
    except KeyError:
        raise KeyError(f"SeisBench class {name.removeprefix(PREFIX)!r} is not supported; supported: "
                       f"{', '.join(supported_classes())}") from None


def zoo_architecture(card: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The zoo architecture and hyper-parameters that rebuild a card's model (a ``seisbench:<Class>`` card's
    model_args mapped back); KeyError/ValueError when a SeisBench card cannot be trained or evaluated here."""
    architecture = str(card["architecture"])
    if not architecture.startswith(PREFIX):
        return architecture, dict(card.get("hyper_parameters") or {})
    spec = for_class(architecture)
    return spec.name, spec.hparams_from_model_args(card.get("hyper_parameters") or {})


def serving_card(card: dict[str, Any]) -> dict[str, Any]:
    """A trained version's card in SeisBench's terms: ``seisbench:<Class>`` with its model_args, so it serves
    through the SeisBench adapter and exports with ``save``; other architectures' cards pass unchanged."""
    spec = next((a for a in BY_CLASS.values() if a.name == card["architecture"]), None)
    if spec is None:
        return card
    return {**card, "architecture": spec.card_architecture, "zoo_architecture": spec.name,
            "hyper_parameters": spec.model_args(card["hyper_parameters"]), "class_names": []}

ARCHITECTURES = (SEISBENCH_PHASENET, SEISBENCH_EQTRANSFORMER)
