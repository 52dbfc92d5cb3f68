"""MoCo v2's momentum encoder and queue of negatives (He et al. 2020, Chen et al. 2020b): pretrain(method="moco").

SimCLR finds its negatives in the batch, so a CPU's batch of 128 gives each view 254 of them; MoCo keeps the keys of
the last steps in a queue (4,096 by default) computed by a slowly moving copy of the network, so the number of
negatives no longer depends on the batch. The copy follows the trained network by an exponential moving average
and is never trained by gradients.

On one device MoCo's "shuffling BN" is emulated by computing the keys in chunks of a shuffled batch: each chunk's
batch-norm statistics then mix other images than the queries' batch, so the network cannot match a query to its key
through the statistics alone (the information leak that shuffling BN across GPUs prevents).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

KEY_CHUNKS = 4


class MomentumContrast:
    """The key encoder (a momentum copy of backbone and projection head) and the queue of past keys.

    Args:
        model, projection: the trained backbone and projection head; copied now, then followed by ``follow``.
        queue_size: negatives kept (>= 1).
        momentum: m in key = m * key + (1 - m) * query for every parameter, in [0, 1).
        temperature: of the InfoNCE loss.
        generator: seeds the initial queue (random unit vectors) and the key chunks' shuffles.
        device: where the queue lives.
    """

    def __init__(self, model: torch.nn.Module, projection: torch.nn.Module, *, queue_size: int, momentum: float,
                 temperature: float, generator: torch.Generator, device: torch.device):
        self.key_model = copy.deepcopy(model)
        self.key_projection = copy.deepcopy(projection)
        for parameter in [*self.key_model.parameters(), *self.key_projection.parameters()]:
            parameter.requires_grad_(False)
        self.pairs = list(zip([*model.parameters(), *projection.parameters()],
                              [*self.key_model.parameters(), *self.key_projection.parameters()], strict=True))
        dim = projection[-1].out_features
        self.queue = F.normalize(torch.randn(queue_size, dim, generator=generator), dim=1).to(device)
        self.pointer = 0
        self.momentum, self.temperature, self.generator = momentum, temperature, generator

    @torch.no_grad()
    def keys(self, views: torch.Tensor) -> torch.Tensor:
        """Unit-length key projections of ``views``, in their order, computed in shuffled chunks."""
        order = torch.randperm(len(views), generator=self.generator).to(views.device)
        keys = torch.empty(len(views), self.queue.shape[1], device=views.device)
        for part in order.chunk(min(KEY_CHUNKS, len(views))):
            keys[part] = F.normalize(self.key_projection(self.key_model(views[part])), dim=1)
        return keys

    def loss(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """InfoNCE: each query's positive is its own key, its negatives the queue."""
        queries = F.normalize(queries, dim=1)
        positive = (queries * keys).sum(dim=1, keepdim=True)
        logits = torch.cat([positive, queries @ self.queue.T], dim=1) / self.temperature
        return F.cross_entropy(logits, torch.zeros(len(queries), dtype=torch.long, device=queries.device))

    @torch.no_grad()
    def follow(self, keys: torch.Tensor) -> None:
        """After an optimiser step: move the key encoder towards the trained one and push ``keys`` into the queue."""
        for trained, key in self.pairs:
            key.mul_(self.momentum).add_(trained.detach(), alpha=1 - self.momentum)
        size = len(self.queue)
        keys = keys[-size:]
        slots = (self.pointer + torch.arange(len(keys))) % size
        self.queue[slots.to(self.queue.device)] = keys
        self.pointer = (self.pointer + len(keys)) % size
