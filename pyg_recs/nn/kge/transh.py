from typing import Any, List, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Embedding
from torch_geometric.nn.kge import KGEModel
from torch_geometric.typing import OptTensor
from tqdm import tqdm

from pyg_recs.nn.recommender import Recommender

#: Default upper bound on the number of elements of one
#: :obj:`[batch_size, chunk_size, hidden_channels]` intermediate tensor of
#: the batched scoring functions (16 MiB in :obj:`float32`).
CHUNK_ELEMENTS = 2**22


class TransH(KGEModel, Recommender):
    r"""The TransH model from the `"Knowledge Graph Embedding by
    Translating on Hyperplanes" <https://ojs.aaai.org/index.php/AAAI/
    article/view/8870>`_ paper.

    :class:`TransH` gives every relation :math:`r` a hyperplane with unit
    normal :math:`\mathbf{w}_r` and a translation :math:`\mathbf{d}_r`
    lying in it. Entities are projected onto the hyperplane,

    .. math::
        \mathbf{e}_{\perp} = \mathbf{e} - (\mathbf{w}_r^{\top} \mathbf{e})
        \, \mathbf{w}_r,
        \qquad \mathbf{w}_r = \frac{\mathbf{w}'_r}{\| \mathbf{w}'_r \|_2},

    and translated there, :math:`\mathbf{h}_{\perp} + \mathbf{d}_r \approx
    \mathbf{t}_{\perp}`, resulting in the scoring function (higher is
    better)

    .. math::
        d(h, r, t) = - {\| \mathbf{h}_{\perp} + \mathbf{d}_r -
        \mathbf{t}_{\perp} \|}_p.

    The normals :math:`\mathbf{w}'_r` are stored in :obj:`rel_norm_emb`
    and normalised to unit :math:`L_2` norm whenever they are used. The
    soft constraints of the paper are available as :meth:`norm_loss`
    (:math:`\| \mathbf{e} \|_2 \leq 1`) and :meth:`orthogonal_loss`
    (:math:`\mathbf{w}_r^{\top} \mathbf{d}_r = 0`).

    Unlike :meth:`KGEModel.test`, which scores one triplet at a time,
    :meth:`score_all_tails` and :meth:`score_all_heads` rank all entities for
    a whole mini-batch of queries with tensor operations, ready for
    :func:`pyg_recs.metrics.filtered_rank`.

    Args:
        num_nodes (int): The number of nodes/entities in the graph.
        num_relations (int): The number of relations in the graph.
        hidden_channels (int): The hidden embedding size.
        margin (float, optional): The margin of the ranking loss.
            (default: :obj:`1.0`)
        p_norm (float, optional): The order :math:`p` of the distance.
            (default: :obj:`1.0`)
        sparse (bool, optional): If set to :obj:`True`, gradients w.r.t. to
            the embedding matrices will be sparse. (default: :obj:`False`)
    """
    def __init__(
        self,
        num_nodes: int,
        num_relations: int,
        hidden_channels: int,
        margin: float = 1.0,
        p_norm: float = 1.0,
        sparse: bool = False,
    ) -> None:
        if num_nodes < 1:
            raise ValueError(f"Invalid 'num_nodes' (got {num_nodes})")
        if num_relations < 1:
            raise ValueError(f"Invalid 'num_relations' (got {num_relations})")
        if hidden_channels < 1:
            raise ValueError(f"Invalid 'hidden_channels' "
                             f"(got {hidden_channels})")
        super().__init__(num_nodes, num_relations, hidden_channels, sparse)

        self.margin = margin
        self.p_norm = p_norm
        self.rel_norm_emb = Embedding(num_relations, hidden_channels,
                                      sparse=sparse)

        self.reset_parameters()

    def reset_parameters(self):
        r"""Resets all learnable parameters: Xavier-uniform rows rescaled to
        unit :math:`L_2` norm, as the reference implementation of KTUP
        initialises its TransH part."""
        for emb in (self.node_emb, self.rel_emb, self.rel_norm_emb):
            torch.nn.init.xavier_uniform_(emb.weight)
            with torch.no_grad():
                emb.weight.copy_(F.normalize(emb.weight, p=2, dim=-1))

    def normal(self, rel_type: OptTensor = None) -> Tensor:
        r"""Returns the unit hyperplane normals :math:`\mathbf{w}_r` of
        :obj:`rel_type` (all relations if :obj:`None`)."""
        w = self.rel_norm_emb.weight if rel_type is None else \
            self.rel_norm_emb(rel_type)
        return F.normalize(w, p=2, dim=-1)

    @staticmethod
    def project(x: Tensor, normal: Tensor) -> Tensor:
        r"""Projects :obj:`x` onto the hyperplanes with unit normals
        :obj:`normal`, :math:`\mathbf{x} - (\mathbf{w}^{\top} \mathbf{x})
        \mathbf{w}` (both broadcast over leading dimensions)."""
        return x - (x * normal).sum(dim=-1, keepdim=True) * normal

    def forward(
        self,
        head_index: Tensor,
        rel_type: Tensor,
        tail_index: Tensor,
    ) -> Tensor:
        self.check_triples(head_index, rel_type, tail_index)
        return self._forward(head_index, rel_type, tail_index)

    def check_triples(
        self,
        head_index: OptTensor = None,
        rel_type: OptTensor = None,
        tail_index: OptTensor = None,
    ) -> None:
        r"""Raises a :class:`ValueError` naming the argument if an entity
        or relation id is out of range (a :class:`TypeError` if it is not
        an integer tensor), instead of an index error deep inside the
        embedding lookup or a device-side assertion on a GPU."""
        check_index((head_index, self.num_nodes, 'head_index'),
                    (rel_type, self.num_relations, 'rel_type'),
                    (tail_index, self.num_nodes, 'tail_index'))

    def _forward(self, head_index: Tensor, rel_type: Tensor,
                 tail_index: Tensor) -> Tensor:
        head, tail = self.lookup(head_index, tail_index)  # [B, d] each
        return self.score_embeddings(head, rel_type, tail)

    def lookup(self, *node_index: Tensor) -> List[Tensor]:
        r"""The entity embeddings of every index tensor in
        :obj:`node_index`, gathered with a single lookup: every lookup of
        the entity table makes autograd allocate, zero and accumulate a
        dense gradient of the whole table, which dominated the training
        step for tens of thousands of entities."""
        sizes = [index.numel() for index in node_index]
        emb = self.node_emb(torch.cat([index.reshape(-1)
                                       for index in node_index]))
        return [x.view(*index.size(), -1)
                for x, index in zip(emb.split(sizes), node_index)]

    def score_embeddings(self, head: Tensor, rel_type: Tensor,
                         tail: Tensor) -> Tensor:
        r"""The score :math:`-\| \mathbf{h}_{\perp} + \mathbf{d}_r -
        \mathbf{t}_{\perp} \|_p` of head and tail embeddings :obj:`[B, d]`
        under the relations :obj:`rel_type` :obj:`[B]`."""
        rel = self.rel_emb(rel_type)  # [B, d]
        normal = self.normal(rel_type)  # [B, d]
        diff = self.project(head, normal) + rel - self.project(tail, normal)
        return -diff.norm(p=self.p_norm, dim=-1)

    def loss(
        self,
        head_index: Tensor,
        rel_type: Tensor,
        tail_index: Tensor,
        margin: Optional[float] = None,
        return_embeddings: bool = False,
    ):
        r"""The margin ranking loss
        :math:`\max(0, \gamma - d(h, r, t) + d(h', r, t'))` averaged over
        the triplets, against triplets corrupted by :meth:`random_sample`.

        Args:
            head_index, rel_type, tail_index (torch.Tensor): The triplets.
            margin (float, optional): :math:`\gamma`, if not
                :obj:`self.margin`. (default: :obj:`None`)
            return_embeddings (bool, optional): Also return the head and tail
                embeddings of the positive then the corrupted triplets
                (:obj:`[2B, d]` each) and their relations (:obj:`[2B]`), for
                constraints on them (as :class:`~pyg_recs.nn.models.KTUP`'s
                KG loss adds). (default: :obj:`False`)
        """
        self.check_triples(head_index, rel_type, tail_index)
        if head_index.numel() == 0:
            raise ValueError("The loss of an empty batch is undefined (got "
                             "an empty 'head_index')")
        neg_head, _, neg_tail = self.random_sample(head_index, rel_type,
                                                   tail_index)
        # One lookup of the entity table for everything (see lookup):
        head, tail = self.lookup(torch.cat([head_index, neg_head]),
                                 torch.cat([tail_index, neg_tail]))
        rel_type = torch.cat([rel_type, rel_type])  # positive, corrupted
        pos_score, neg_score = self.score_embeddings(head, rel_type,
                                                     tail).chunk(2)
        loss = F.margin_ranking_loss(
            pos_score,
            neg_score,
            target=torch.ones_like(pos_score),
            margin=self.margin if margin is None else margin,
        )
        if return_embeddings:
            return loss, head, tail, rel_type
        return loss

    def batch_scores(self, batch: Any) -> Tensor:
        r"""Scores of every entity as the tail of the queries
        :obj:`(head_index, rel_type, ?)` of a mini-batch (a
        :class:`~torch_geometric.data.Data` object or a dictionary),
        :obj:`[batch_size, num_nodes]`: with :meth:`recommend`, TransH meets
        the :class:`~pyg_recs.nn.models.Recommender` interface (tail
        prediction)."""
        keys = ('head_index', 'rel_type')
        get = batch.get if isinstance(batch, Mapping) else \
            (lambda key: getattr(batch, key, None))
        fields = [get(key) for key in keys]
        if any(field is None for field in fields):
            raise ValueError(f"TransH.batch_scores needs the fields {keys}")
        return self.score_all_tails(*fields)

    def batch_loss(self, batch: Any) -> Tensor:
        r"""The training loss of a mini-batch of triplets for
        :class:`~pyg_recs.engine.Trainer`: :meth:`loss` of its
        :obj:`head_index`, :obj:`rel_type` and :obj:`tail_index` (a
        :class:`~torch_geometric.data.Data` object or a dictionary)."""
        keys = ('head_index', 'rel_type', 'tail_index')
        get = batch.get if isinstance(batch, Mapping) else \
            (lambda key: getattr(batch, key, None))
        fields = [get(key) for key in keys]
        if any(field is None for field in fields):
            raise ValueError(f"A TransH batch needs the fields {keys}")
        return self.loss(*fields)

    def norm_loss(
        self,
        node_index: OptTensor = None,
        rel_type: OptTensor = None,
    ) -> Tensor:
        r"""The soft scale constraint :math:`\max(0, \| \mathbf{e} \|_2^2 -
        1)`, averaged over the entities :obj:`node_index` (all if
        :obj:`None`), plus the same average over the translations
        :math:`\mathbf{d}_r` of :obj:`rel_type` (all if :obj:`None`), as the
        reference implementation of KTUP constrains both."""
        ent = self.node_emb.weight if node_index is None else \
            self.node_emb(node_index)
        rel = self.rel_emb.weight if rel_type is None else \
            self.rel_emb(rel_type)
        return _norm_penalty(ent) + _norm_penalty(rel)

    def orthogonal_loss(self, rel_type: OptTensor = None) -> Tensor:
        r"""The soft orthogonality constraint :math:`(\mathbf{w}_r^{\top}
        \mathbf{d}_r)^2 / \| \mathbf{d}_r \|_2^2`, averaged over the
        relations :obj:`rel_type` (all if :obj:`None`)."""
        rel = self.rel_emb.weight if rel_type is None else \
            self.rel_emb(rel_type)
        return orthogonal_penalty(rel, self.normal(rel_type)).mean()

    def score_all_tails(
        self,
        head_index: Tensor,
        rel_type: Tensor,
        chunk_size: Optional[int] = None,
    ) -> Tensor:
        r"""Scores every entity as the tail of :math:`(h, r, ?)`, for a
        mini-batch of queries at once.

        All entities are projected onto the hyperplane of each relation of
        the batch once and compared with the queries of that relation by
        :func:`torch.cdist`, so that memory stays at the
        :obj:`[batch_size, num_nodes]` output plus one projected copy of
        the entity table.

        Args:
            head_index (torch.Tensor): The head indices, :obj:`[batch_size]`.
            rel_type (torch.Tensor): The relation types, :obj:`[batch_size]`.
            chunk_size (int, optional): If given, entities are projected and
                scored this many at a time. (default: :obj:`None`)

        :rtype: :class:`torch.Tensor` of shape
            :obj:`[batch_size, num_nodes]`, higher is better; equal to
            :obj:`self(head_index[i], rel_type[i], j)` at :obj:`[i, j]`.
        """
        self.check_triples(head_index, rel_type)
        normal = self.normal(rel_type)  # [B, d]
        query = (self.project(self.node_emb(head_index), normal) +
                 self.rel_emb(rel_type))  # [B, d]
        # d(h, r, t) = -|| query - t_perp ||_p
        return self._score_all(query, rel_type, chunk_size)

    def score_all_heads(
        self,
        rel_type: Tensor,
        tail_index: Tensor,
        chunk_size: Optional[int] = None,
    ) -> Tensor:
        r"""Scores every entity as the head of :math:`(?, r, t)`, see
        :meth:`score_all_tails`.

        :rtype: :class:`torch.Tensor` of shape
            :obj:`[batch_size, num_nodes]`, higher is better.
        """
        self.check_triples(rel_type=rel_type, tail_index=tail_index)
        normal = self.normal(rel_type)  # [B, d]
        query = (self.project(self.node_emb(tail_index), normal) -
                 self.rel_emb(rel_type))  # [B, d]
        # d(h, r, t) = -|| h_perp - query ||_p = -|| query - h_perp ||_p
        return self._score_all(query, rel_type, chunk_size)

    def _score_all(self, query: Tensor, rel_type: Tensor,
                   chunk_size: Optional[int]) -> Tensor:
        # query: [B, d] -> -|| query - proj(e, w_r) ||_p over all entities
        # e, [B, num_nodes]. The entities are projected once per relation of
        # the batch and compared with torch.cdist, which forms no
        # [B, num_nodes, d] tensor (on a CPU ~45x faster than broadcasting
        # chunks for 256 queries x 35k entities, L1).
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"Invalid 'chunk_size' (got {chunk_size})")
        ent = self.node_emb.weight
        chunks = [ent] if chunk_size is None else ent.split(chunk_size)
        out = query.new_empty(query.size(0), self.num_nodes)
        for rel in rel_type.unique():
            rows = (rel_type == rel).nonzero().view(-1)
            normal = self.normal(rel.view(1))  # [1, d]
            start = 0
            for chunk in chunks:
                ent_perp = self.project(chunk, normal)  # [C, d]
                out[rows, start:start + chunk.size(0)] = -torch.cdist(
                    query[rows], ent_perp, p=self.p_norm,
                    compute_mode='donot_use_mm_for_euclid_dist')
                start += chunk.size(0)
        return out

    @torch.no_grad()
    def test(
        self,
        head_index: Tensor,
        rel_type: Tensor,
        tail_index: Tensor,
        batch_size: int,
        k: int = 10,
        log: bool = True,
    ) -> Tuple[float, float, float]:
        r"""Evaluates the model quality by computing Mean Rank, MRR and
        Hits@\ :math:`k` across all possible tail entities, with the same
        (raw, 0-based mean rank) conventions as :meth:`KGEModel.test` but
        ranking :obj:`batch_size` triplets at once with
        :meth:`score_all_tails`. For filtered ranks, use
        :meth:`score_all_tails` with :func:`pyg_recs.metrics.filtered_rank`.

        Args:
            head_index (torch.Tensor): The head indices.
            rel_type (torch.Tensor): The relation type.
            tail_index (torch.Tensor): The tail indices.
            batch_size (int): The number of triplets ranked at once.
            k (int, optional): The :math:`k` in Hits @ :math:`k`.
                (default: :obj:`10`)
            log (bool, optional): If set to :obj:`False`, will not print a
                progress bar to the console. (default: :obj:`True`)
        """
        if batch_size < 1:
            raise ValueError(f"Invalid 'batch_size' (got {batch_size})")
        self.check_triples(head_index, rel_type, tail_index)
        starts = range(0, head_index.numel(), batch_size)
        starts = tqdm(starts) if log else starts

        ranks = []
        for start in starts:
            end = start + batch_size
            h, r = head_index[start:end], rel_type[start:end]
            t = tail_index[start:end]
            scores = self.score_all_tails(h, r)  # [B, num_nodes]
            true_score = scores.gather(1, t.view(-1, 1))  # [B, 1]
            ranks.append((scores > true_score).sum(dim=-1))  # 0-based

        rank = torch.cat(ranks).float()
        if rank.numel() == 0:
            return 0.0, 0.0, 0.0
        mean_rank = float(rank.mean())
        mrr = float((1.0 / (rank + 1)).mean())
        hits_at_k = float((rank < k).float().mean())

        return mean_rank, mrr, hits_at_k

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_nodes}, '
                f'num_relations={self.num_relations}, '
                f'hidden_channels={self.hidden_channels}, '
                f'p_norm={self.p_norm})')


def check_index(*checks: Tuple[Optional[Tensor], int, str]) -> None:
    r"""Checks that every :obj:`(index, size, name)` holds integer ids in
    :obj:`[0, size - 1]`, with one device synchronisation for all of them
    (none while compiling); :obj:`None` indices are skipped.

    Raises:
        TypeError: If an index is not an integer tensor.
        ValueError: If an id is out of range; the message names the
            argument, the valid range and the values given.
    """
    if torch.compiler.is_compiling():
        return
    todo = []
    for index, size, name in checks:
        if index is None:
            continue
        if not isinstance(index, Tensor) or index.is_floating_point() \
                or index.is_complex() or index.dtype == torch.bool:
            what = index.dtype if isinstance(index, Tensor) else \
                type(index).__name__
            raise TypeError(f"'{name}' must be an integer tensor of ids "
                            f"(got {what})")
        if index.numel() > 0:
            todo.append((index, size, name))
    if len(todo) == 0:
        return
    bounds = torch.stack([
        torch.stack(torch.aminmax(index.reshape(-1))).long()
        for index, _, _ in todo
    ]).tolist()  # One synchronisation.
    for (index, size, name), (low, high) in zip(todo, bounds):
        if low < 0 or high >= size:
            raise ValueError(f"'{name}' must hold ids in [0, {size - 1}] "
                             f"(got values from {low} to {high})")


def _norm_penalty(x: Tensor) -> Tensor:
    # mean over rows of max(0, ||x||_2^2 - 1)
    return F.relu(x.pow(2).sum(dim=-1) - 1.0).mean()


def orthogonal_penalty(vector: Tensor, normal: Tensor,
                       eps: float = 1e-12) -> Tensor:
    r"""Row-wise :math:`(\mathbf{w}^{\top} \mathbf{d})^2 / \| \mathbf{d}
    \|_2^2`: zero when the translation :math:`\mathbf{d}` lies in the
    hyperplane with unit normal :math:`\mathbf{w}`."""
    dot = (vector * normal).sum(dim=-1)
    return dot.pow(2) / vector.pow(2).sum(dim=-1).clamp_min(eps)


__all__ = ['TransH']
