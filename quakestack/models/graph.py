"""Graph layers over the time steps of a feature sequence (EQGraphNet, MagInfoNet).

Nodes are the time steps of a [B, C, N] sequence; each node links to its ``k`` neighbours on either side
(EQ-Web's "ts_un" adjacency, weight 0.5). Edge indices are built here with plain torch — no
torch-cluster — and a batch is the disjoint union of B copies, so every torch-geometric conv works.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

GRAPH_LAYERS = ("gcn", "cheb", "graphsage", "gat", "gin", "graphconv", "tag", "sg", "arma", "transformer")
# Convs whose forward accepts a scalar edge weight; the others see the bare topology.
_WEIGHTED = {"gcn", "cheb", "graphconv", "tag", "sg", "arma"}


def temporal_edge_index(n_nodes: int, k: int, device: torch.device | None = None) -> Tensor:
    """Edges i<->i+d for d in 1..k (both directions), shape [2, E] with E = 2 * sum(n_nodes - d)."""
    if k < 1:
        raise ValueError(f"k_neighbours must be >= 1, got {k}")
    parts = []
    for d in range(1, min(k, n_nodes - 1) + 1):
        a = torch.arange(n_nodes - d, device=device)
        parts.append(torch.stack([a, a + d]))
        parts.append(torch.stack([a + d, a]))
    if not parts:
        return torch.zeros(2, 0, dtype=torch.long, device=device)
    return torch.cat(parts, dim=1)


def batch_edge_index(edge_index: Tensor, n_nodes: int, batch_size: int) -> Tensor:
    """Disjoint union of ``batch_size`` copies of one graph: node ids offset by n_nodes per sample."""
    offsets = torch.arange(batch_size, device=edge_index.device) * n_nodes
    return (edge_index[:, None, :] + offsets[None, :, None]).reshape(2, -1)


def make_conv(kind: str, in_channels: int, out_channels: int) -> nn.Module:
    """A torch-geometric conv by short name (EQ-Web's gnn_style names, 'transformer' = their 'unimp')."""
    import torch_geometric.nn as gnn  # here: importing it costs a second, and only graph models need it

    if kind == "gcn":
        return gnn.GCNConv(in_channels, out_channels)
    if kind == "cheb":
        return gnn.ChebConv(in_channels, out_channels, K=2)
    if kind == "graphsage":
        return gnn.SAGEConv(in_channels, out_channels)
    if kind == "gat":
        return gnn.GATConv(in_channels, out_channels, heads=1)
    if kind == "gin":
        mlp = nn.Sequential(nn.Linear(in_channels, out_channels), nn.ReLU(), nn.Linear(out_channels, out_channels))
        return gnn.GINConv(mlp, train_eps=True)
    if kind == "graphconv":
        return gnn.GraphConv(in_channels, out_channels)
    if kind == "tag":
        return gnn.TAGConv(in_channels, out_channels, K=2)
    if kind == "sg":
        return gnn.SGConv(in_channels, out_channels, K=1)
    if kind == "arma":
        return gnn.ARMAConv(in_channels, out_channels)
    if kind == "transformer":
        return gnn.TransformerConv(in_channels, out_channels)
    raise ValueError(f"graph_layer must be one of [{', '.join(GRAPH_LAYERS)}], got {kind!r}")


class TemporalGraphLayer(nn.Module):
    """One graph conv over the time-step nodes of a [B, C, N] sequence, returning [B, C_out, N].

    Edge weights start at EQ-Web's 0.5 and, as there, may be learnt; they pass through a sigmoid so
    that GCN's degree normalisation never sees a negative degree.
    """

    def __init__(
        self,
        kind: str,
        in_channels: int,
        out_channels: int,
        n_nodes: int,
        k: int = 1,
        learn_edge_weight: bool = True,
    ) -> None:
        super().__init__()
        self.kind, self.n_nodes = kind, n_nodes
        self.conv = make_conv(kind, in_channels, out_channels)
        self.register_buffer("edge_index", temporal_edge_index(n_nodes, k), persistent=False)
        self.weighted = kind in _WEIGHTED
        n_edges = self.edge_index.shape[1]
        if self.weighted and learn_edge_weight:
            self.edge_logit = nn.Parameter(torch.zeros(n_edges))  # sigmoid(0) = 0.5
        else:
            self.register_buffer("edge_logit", torch.zeros(n_edges), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, c, n = x.shape
        if n != self.n_nodes:
            raise ValueError(f"graph layer built for {self.n_nodes} time-step nodes, got {n}")
        h = x.transpose(1, 2).reshape(b * n, c)
        edge_index = batch_edge_index(self.edge_index, n, b)
        if self.weighted:
            weight = torch.sigmoid(self.edge_logit).repeat(b)
            out = self.conv(h, edge_index, weight)
        else:
            out = self.conv(h, edge_index)
        return out.reshape(b, n, -1).transpose(1, 2)
