"""Layered (1D) velocity models: exact travel-time tables, their cache, validation, and association with them."""

from __future__ import annotations

import math
import multiprocessing
import struct
from pathlib import Path

import numpy as np
import pytest

from quakestack.catalog.associate import associate, association_parameters
from quakestack.catalog.velocity import cached_table, first_arrival_times, table_bytes, validate_layers
from quakestack.errors import InvalidArgument
from quakestack.protoconv import dict_from_struct, struct_from_dict
from tests.catalog.test_associate import _km, _stations, _truth_picks

X = np.arange(0.0, 120.5, 0.5)
Z = np.arange(0.0, 30.5, 0.5)


def test_a_homogeneous_model_gives_straight_rays_however_it_is_split() -> None:
    straight = np.hypot(X[:, None], Z[None, :]) / 6.0
    assert np.abs(first_arrival_times([0.0], [6.0], X, Z) - straight).max() < 1e-9
    assert np.abs(first_arrival_times([0.0, 4.0, 11.0], [6.0, 6.0, 6.0], X, Z) - straight).max() < 1e-9


def test_two_layers_give_the_direct_wave_then_the_head_wave_and_snell_below() -> None:
    times = first_arrival_times([0.0, 10.0], [5.0, 8.0], X, Z)
    head = X / 8.0 + 2 * 10.0 * math.sqrt(1 / 25 - 1 / 64)
    assert np.abs(times[:, 0] - np.minimum(X / 5.0, head)).max() < 1e-9
    crossover = 2 * 10.0 * math.sqrt((8 + 5) / (8 - 5))  # textbook crossover distance, ~36 km
    assert times[int(30 / 0.5), 0] == pytest.approx(30 / 5.0) and times[int(60 / 0.5), 0] < 60 / 5.0
    assert 30 < crossover < 60
    for x_km in (0.0, 5.0, 20.0, 100.0):  # receiver at 15 km, below the interface: least time over crossings
        crossing = np.linspace(0.0, x_km, 400_001)
        fermat = (np.hypot(crossing, 10.0) / 5.0 + np.hypot(x_km - crossing, 5.0) / 8.0).min()
        assert times[int(x_km / 0.5), int(15 / 0.5)] == pytest.approx(fermat, abs=1e-6)


def test_the_table_is_pyoctos_binary_layout() -> None:
    layers = validate_layers([[0, 6.0, 3.5]])
    data = table_bytes(layers, 20.0, 5.0, 1.0)
    nx, nz, delta = struct.unpack_from("iid", data)
    assert (nx, nz, delta) == (21, 6, 1.0) and len(data) == 16 + 2 * 8 * nx * nz
    p = np.frombuffer(data, np.float64, nx * nz, 16).reshape(nx, nz)  # index x * nz + z, as PyOcto reads it
    s = np.frombuffer(data, np.float64, nx * nz, 16 + 8 * nx * nz).reshape(nx, nz)
    assert p[3, 4] == pytest.approx(5.0 / 6.0) and s[3, 4] == pytest.approx(5.0 / 3.5)


def _build(args) -> str:
    layers, cache_dir = args
    return str(cached_table(layers, 100.0, 20.0, 0.25, cache_dir))


def test_tables_are_built_once_per_model_and_grid_even_by_two_processes_at_once(tmp_path) -> None:
    layers = validate_layers([[0, 5.5, 3.2], [8, 6.2, 3.6]])
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        paths = pool.map(_build, [(layers, tmp_path)] * 4)
    assert len(set(paths)) == 1
    directory = tmp_path / "velocity-models"
    assert [p.name for p in directory.iterdir()] == [paths[0].rsplit("/", 1)[1]]  # no temporary files left
    assert Path(paths[0]).read_bytes() == table_bytes(layers, 100.0, 20.0, 0.25)
    mtime = directory.joinpath(paths[0]).stat().st_mtime_ns
    assert _build((layers, tmp_path)) == paths[0] and directory.joinpath(paths[0]).stat().st_mtime_ns == mtime
    other_grid = cached_table(layers, 100.0, 20.0, 0.5, tmp_path)
    other_model = cached_table(validate_layers([[0, 5.5, 3.2], [9, 6.2, 3.6]]), 100.0, 20.0, 0.25, tmp_path)
    assert len({str(other_grid), str(other_model), paths[0]}) == 3


def test_a_1d_model_equal_to_the_homogeneous_one_gives_the_same_events(network, tmp_path) -> None:
    picks = _truth_picks(network, np.random.default_rng(0))
    homogeneous = associate(picks, _stations(network), {"chunk_s": 600.0})
    layered = associate(picks, _stations(network), {"chunk_s": 600.0, "velocity_model": "1d",
                                                    "velocity_layers": [[0.0, 6.0, 3.5]]}, cache_dir=tmp_path)
    assert len(layered) == len(homogeneous) == len(network.events)
    for a, b, truth in zip(homogeneous, layered, network.events, strict=True):
        # the 1D table corrects for station elevation vertically, the 0D model in the distance: within 0.5 s
        assert abs(a.origin_time - b.origin_time) < 0.5
        assert _km(a.latitude, a.longitude, b.latitude, b.longitude) < 3.0 and abs(a.depth_km - b.depth_km) < 5.0
        assert {p.pick_id for p, _ in a.picks} == {p.pick_id for p, _ in b.picks}
        assert abs(b.origin_time - truth["origin_time"].timestamp) < 0.5
        assert _km(b.latitude, b.longitude, truth["latitude"], truth["longitude"]) < 5.0
    assert len(list((tmp_path / "velocity-models").iterdir())) == 1


@pytest.mark.parametrize("layers, message", [
    (None, 'velocity_model "1d" needs velocity_layers'),
    ([], "velocity_layers must be a non-empty list"),
    ("not json", "velocity_layers must be a list of .* not JSON"),
    ([[1.0, 6.0, 3.5]], r"velocity_layers\[0\].depth_km must be 0"),
    ([[0.0, 6.0, 3.5], [10.0, 6.5, 3.7], [10.0, 7.0, 4.0]], r"velocity_layers\[2\].depth_km \(10\) must be greater"),
    ([[0.0, 6.0, 3.5], [5.0, 5.0, 6.0]], r"velocity_layers\[1\].vs_km_s \(6\) must be below vp_km_s \(5\)"),
    ([[0.0, 6.0, 0.0]], r"velocity_layers\[0\].vs_km_s must be in \[0.1, 8\]"),
    ([[0.0, 30.0, 3.5]], r"velocity_layers\[0\].vp_km_s must be in \[0.5, 14\]"),
    ([[0.0, 6.0]], r"velocity_layers\[0\] must be \[depth_km, vp_km_s, vs_km_s\]"),
    ([[0.0, "fast", 3.5]], r"velocity_layers\[0\].vp_km_s must be a number"),
    ([[0.0, 6.0, 3.5], [800.0, 9.0, 5.0]], r"velocity_layers\[1\].depth_km must be in \[0, 700\]"),
])
def test_bad_layer_tables_are_refused(layers, message) -> None:
    params = {"velocity_model": "1d"} if layers is None else {"velocity_model": "1d", "velocity_layers": layers}
    with pytest.raises(InvalidArgument, match=message):
        association_parameters(params)


def test_layers_arrive_as_struct_lists_or_json_and_only_with_1d() -> None:
    rows = [[0, 5.8, 3.3], [12, 6.4, 3.7]]
    request = dict_from_struct(struct_from_dict({"velocity_model": "1d", "velocity_layers": rows}))
    assert request["velocity_layers"] == [[0.0, 5.8, 3.3], [12.0, 6.4, 3.7]]  # a Struct gives lists of floats
    assert association_parameters(request)["velocity_layers"] == ((0.0, 5.8, 3.3), (12.0, 6.4, 3.7))
    assert association_parameters({"velocity_model": "1d", "velocity_layers": "[[0, 5.8, 3.3]]"})[
        "velocity_layers"] == ((0.0, 5.8, 3.3),)
    with pytest.raises(InvalidArgument, match='velocity_layers is only used with velocity_model "1d"'):
        association_parameters({"velocity_layers": rows})
    with pytest.raises(InvalidArgument, match=r"velocity_grid_km must be in \[0.1, 10\]"):
        association_parameters({"velocity_model": "1d", "velocity_layers": rows, "velocity_grid_km": 0.01})
    resolved = association_parameters({"velocity_model": "1d", "velocity_layers": rows})
    assert association_parameters(resolved) == resolved  # resolving twice changes nothing
