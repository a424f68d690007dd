"""A tiny ConvNetQuake trained in-process on windows cut from synthetic continuous data (seconds on CPU).

Positive windows hold a P onset in their first 0.5-7.5 s; negatives are pure noise or coda after
the onset — so the detector answers "an event starts here", and the stacked probability is centred
near the onset.
"""

from __future__ import annotations

import io

import numpy as np
import obspy
import torch

from quakestack.data.synthetic import write_continuous
from quakestack.models.zoo import build_model

RATE = 100.0
HPARAMS = {"n_samples": 1000, "n_layers": 8, "channels": 16, "n_clusters": 2}
LENGTH = 1000


def p_arrivals(truth: list[dict]) -> dict[str, list[float]]:
    """Station (NET.STA.LOC) -> P times (POSIX seconds)."""
    out: dict[str, list[float]] = {}
    for event in truth:
        for pick in event["picks"]:
            if pick["phase"] == "P":
                out.setdefault(pick["seed_id"].rsplit(".", 1)[0], []).append(float(pick["time"].timestamp))
    return out


def cut_windows(paths: list[str], truth: list[dict], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    arrivals = p_arrivals(truth)
    xs, ys = [], []
    for path in paths:
        st = obspy.read(path)
        st.sort(keys=["channel"], reverse=True)  # Z, N, E
        data = np.stack([tr.data for tr in st]).astype(np.float32)
        t0 = st[0].stats.starttime.timestamp
        station = st[0].id.rsplit(".", 1)[0]
        onsets = [int(round((t - t0) * RATE)) for t in arrivals.get(station, [])]
        for p in onsets:
            for off in rng.uniform(0.5, 7.5, 10):
                s = p - int(off * RATE)
                xs.append(data[:, s:s + LENGTH])
                ys.append(1)
            for off in rng.uniform(1.5, 40.0, 12):
                s = p + int(off * RATE)
                xs.append(data[:, s:s + LENGTH])
                ys.append(0)
        n = data.shape[1]
        while sum(1 for y in ys if y == 0) < sum(ys) * 1.2:
            s = int(rng.integers(0, n - LENGTH))
            if all(s + LENGTH < p - 50 or s > p + 6000 for p in onsets):
                xs.append(data[:, s:s + LENGTH])
                ys.append(0)
    return np.stack(xs), np.asarray(ys)


def train_detector(workdir: str, seeds=(101,), epochs: int = 12) -> bytes:
    """State-dict bytes of a ConvNetQuake trained on synthetic windows (one thread: the machine is shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(workdir, seeds, epochs)
    finally:
        torch.set_num_threads(threads)


def _train(workdir: str, seeds, epochs: int) -> bytes:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for seed in seeds:
        paths, _, truth = write_continuous(f"{workdir}/train-{seed}", seed=seed, duration_s=2400, n_events=9)
        x, y = cut_windows(paths, truth, rng)
        xs.append(x)
        ys.append(y)
    x = torch.from_numpy(np.concatenate(xs))
    y = torch.from_numpy(np.concatenate(ys)).long()
    model, _, _ = build_model("convnetquake", HPARAMS)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = order[i:i + 64]
            loss = torch.nn.functional.cross_entropy(model(x[idx])["logits"], y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()
