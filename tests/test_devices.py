"""One strict device parser: settings, training requests, the training worker and serving agree."""

from __future__ import annotations

import pytest
import torch

from quakestack.config import ConfigError, load_settings
from quakestack.devices import check_gpus, parse_device, resolve_device
from quakestack.errors import FailedPrecondition, InvalidArgument
from quakestack.training.worker import world_size


@pytest.mark.parametrize("text, parsed", [("", "auto"), ("auto", "auto"), (" CPU ", "cpu"), ("cuda", "cuda"),
                                          ("cuda:1", "cuda:1")])
def test_accepted_spellings(text: str, parsed: str) -> None:
    assert parse_device(text) == parsed


@pytest.mark.parametrize("text", ["tpu", "gpu", "cuda:", "cuda:-1", "cuda:x", "cuda:１", "mps", "cpu:0", "cuda 0"])
def test_unknown_devices_are_invalid_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_device(text)
    assert "auto, cpu, cuda or cuda:N" in str(error.value) and repr(text) in str(error.value)
    with pytest.raises(InvalidArgument):
        resolve_device(text)
    with pytest.raises(InvalidArgument):
        check_gpus(text, gpu_count=8)


def test_the_training_worker_refuses_an_unknown_device_instead_of_training_on_the_cpu() -> None:
    spec = {"device": "tpu", "training_hyper_parameters": {"num_gpus": 1, "ddp_processes": 1}}
    with pytest.raises(InvalidArgument, match="tpu"):
        world_size(spec)
    assert world_size({**spec, "device": "cpu"}) == 1


def test_a_gpu_that_is_not_there_is_a_failed_precondition() -> None:
    with pytest.raises(FailedPrecondition, match="cuda:2"):
        check_gpus("cuda:2", gpu_count=2)
    assert check_gpus("cuda:1", gpu_count=2) == "cuda:1"
    if not torch.cuda.is_available():
        with pytest.raises(FailedPrecondition, match="no CUDA device"):
            resolve_device("cuda")
        assert resolve_device("auto", rank=1) == torch.device("cpu")
    assert resolve_device("", default="cpu") == torch.device("cpu")


def test_the_device_setting_uses_the_same_parser() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({"QUAKESTACK_DEVICE": "tpu"})
    assert "QUAKESTACK_DEVICE" in str(error.value) and "auto, cpu, cuda or cuda:N" in str(error.value)
    assert load_settings({"QUAKESTACK_DEVICE": "CUDA:0"}).device == "cuda:0"
