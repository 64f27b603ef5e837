from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Embedding
from torch_geometric.typing import OptTensor

from pyg_recs.metrics import top_k
from pyg_recs.nn.recommender import Recommender
from pyg_recs.nn.kge.transh import (
    CHUNK_ELEMENTS,
    TransH,
    check_index,
    orthogonal_penalty,
)

REC_KEYS = ('user_index', 'pos_item_index', 'neg_item_index')
KG_KEYS = ('head_index', 'rel_type', 'tail_index')


class KTUP(Recommender):
    r"""The KTUP model from the `"Unifying Knowledge Graph Learning and
    Recommendation: Towards a Better Understanding of User Preferences"
    <https://arxiv.org/abs/1902.06236>`_ paper.

    KTUP jointly learns item recommendation (TUP, translation-based user
    preference) and knowledge-graph completion (:class:`TransH`). Each of
    the :math:`R` relations :math:`r` of the knowledge graph is tied to a
    user preference :math:`p` with vector :math:`\mathbf{p}` and hyperplane
    normal :math:`\mathbf{w}_p`. The item :math:`i` is enhanced by the
    embedding of its aligned entity :math:`e_i`,
    :math:`\hat{\mathbf{i}} = \mathbf{i} + \mathbf{e}_i` (zero for items
    without an entity). For a user :math:`u` and an item :math:`i`, the
    preference that explains the interaction is induced by attention over
    the :math:`R` preferences,

    .. math::
        a_{p} = \frac{1}{2} (\mathbf{u} + \hat{\mathbf{i}})^{\top}
        (\mathbf{p} + \mathbf{r}),
        \qquad
        \boldsymbol{\alpha} = \mathrm{softmax}(\mathbf{a} / \tau)

    (soft strategy) or :math:`\boldsymbol{\alpha} = \textrm{one-hot}
    (\arg\max_p (a_p + g_p))` with Gumbel noise :math:`g_p` and
    straight-through gradients of :math:`\mathrm{softmax}((\mathbf{a} +
    \mathbf{g}) / \tau)` (hard strategy, :obj:`use_st_gumbel=True`; at
    evaluation time the noise is dropped, so the hard attention is the
    deterministic :math:`\arg\max_p a_p`). The induced translation and
    normal are

    .. math::
        \mathbf{p}_{ui} = \sum_p \alpha_p \frac{\mathbf{p} + \mathbf{r}}{2},
        \qquad
        \mathbf{w}_{ui} = \frac{\sum_p \alpha_p (\mathbf{w}_p + \mathbf{w}_r)}
        {\| \sum_p \alpha_p (\mathbf{w}_p + \mathbf{w}_r) \|_2},

    and the user and the item are projected onto the induced hyperplane and
    translated there, giving the score (higher is better)

    .. math::
        g(u, i) = - {\| \mathbf{u}_{\perp} + \mathbf{p}_{ui} -
        \hat{\mathbf{i}}_{\perp} \|}_p,
        \qquad
        \mathbf{x}_{\perp} = \mathbf{x} - (\mathbf{w}_{ui}^{\top}
        \mathbf{x}) \mathbf{w}_{ui}.

    The entity, relation and relation-normal embeddings are those of a
    :class:`~pyg_recs.nn.kge.TransH` module (:obj:`self.kg`), so that the
    knowledge-graph loss (:meth:`kg_loss`) and the recommendation loss
    (:meth:`rec_loss`, BPR) train them together. With :obj:`use_kg=False`
    the model is TUP: :math:`R` free preferences, no entities,
    :math:`a_p = \frac{1}{2} (\mathbf{u} + \mathbf{i})^{\top} \mathbf{p}`,
    :math:`\mathbf{p}_{ui} = \sum_p \alpha_p \mathbf{p}` and
    :math:`\mathbf{w}_{ui} \propto \sum_p \alpha_p \mathbf{w}_p`.

    Compared with the reference implementation this module (1) applies the
    softmax of the soft strategy (the reference and RecBole use the raw
    logits :math:`\mathbf{a}` as weights), (2) never samples Gumbel noise
    in evaluation mode (RecBole does, so its rankings are random), (3)
    initialises user, item, preference, entity and relation embeddings
    with unit :math:`L_2` rows, as the reference does (RecBole assigns the
    normalised item embeddings to a misspelled attribute,
    :obj:`weight_data`, and never uses them), and (4) renormalises the
    induced normal :math:`\mathbf{w}_{ui}` so that
    :math:`\mathbf{x}_{\perp}` is an orthogonal projection.

    Args:
        num_users (int): The number of users.
        num_items (int): The number of items.
        num_entities (int): The number of knowledge-graph entities (ignored
            when :obj:`use_kg=False`).
        num_relations (int): The number of knowledge-graph relations, which
            is also the number of preferences.
        hidden_channels (int, optional): The embedding size.
            (default: :obj:`100`)
        item_entity (torch.Tensor, optional): The entity aligned with every
            item, :obj:`[num_items]`, :obj:`-1` for items without an entity.
            If :obj:`None`, item :obj:`i` is entity :obj:`i` (which needs
            :obj:`num_items <= num_entities`). (default: :obj:`None`)
        use_st_gumbel (bool, optional): Use the hard (straight-through
            Gumbel-softmax) attention instead of the soft one.
            (default: :obj:`False`)
        use_kg (bool, optional): If set to :obj:`False`, builds TUP, without
            entities and knowledge-graph loss. (default: :obj:`True`)
        margin (float, optional): The margin of the knowledge-graph ranking
            loss. (default: :obj:`1.0`)
        p_norm (float, optional): The order :math:`p` of both distances; the
            reference runs KTUP with :math:`L_1`. (default: :obj:`1.0`)
        kg_weight (float, optional): The weight :math:`\lambda` of the whole
            knowledge-graph loss. (default: :obj:`1.0`)
        l2_weight (float, optional): :math:`L_2` penalty on the user and
            item embeddings of a recommendation batch, divided by the batch
            size; the reference uses the optimiser's weight decay instead.
            (default: :obj:`0.0`)
        orthogonal_weight (float, optional): The weight of the
            orthogonality constraints between translations and normals.
            (default: :obj:`1.0`)
        norm_weight (float, optional): The weight of the norm constraints
            :math:`\| \mathbf{e} \|_2 \leq 1` on entities and relations.
            (default: :obj:`1.0`)
        temperature (float, optional): The temperature :math:`\tau` of the
            softmax and of the Gumbel-softmax. (default: :obj:`1.0`)
    """
    def __init__(
        self,
        num_users: int,
        num_items: int,
        num_entities: int,
        num_relations: int,
        hidden_channels: int = 100,
        item_entity: OptTensor = None,
        use_st_gumbel: bool = False,
        use_kg: bool = True,
        margin: float = 1.0,
        p_norm: float = 1.0,
        kg_weight: float = 1.0,
        l2_weight: float = 0.0,
        orthogonal_weight: float = 1.0,
        norm_weight: float = 1.0,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        for name, value in (('num_users', num_users),
                            ('num_items', num_items),
                            ('num_relations', num_relations),
                            ('hidden_channels', hidden_channels)):
            if value < 1:
                raise ValueError(f"Invalid '{name}' (got {value})")
        if use_kg and num_entities < 1:
            raise ValueError(f"Invalid 'num_entities' (got {num_entities})")
        if temperature <= 0:
            raise ValueError(f"Invalid 'temperature' (got {temperature})")

        self.num_users = num_users
        self.num_items = num_items
        self.num_entities = num_entities if use_kg else 0
        self.num_relations = num_relations
        self.hidden_channels = hidden_channels
        self.use_st_gumbel = use_st_gumbel
        self.use_kg = use_kg
        self.margin = margin
        self.p_norm = p_norm
        self.kg_weight = kg_weight
        self.l2_weight = l2_weight
        self.orthogonal_weight = orthogonal_weight
        self.norm_weight = norm_weight
        self.temperature = temperature

        self.user_emb = Embedding(num_users, hidden_channels)
        self.item_emb = Embedding(num_items, hidden_channels)
        self.pref_emb = Embedding(num_relations, hidden_channels)
        self.pref_norm_emb = Embedding(num_relations, hidden_channels)

        self.kg: Optional[TransH] = None
        if use_kg:
            # Entities, relations and their normals:
            self.kg = TransH(num_entities, num_relations, hidden_channels,
                             margin=margin, p_norm=p_norm)
            self.register_buffer(
                'item_entity',
                self._check_item_entity(item_entity, num_items,
                                        num_entities))
        else:
            self.register_buffer('item_entity', None)

        self.reset_parameters()

    @staticmethod
    def _check_item_entity(item_entity: OptTensor, num_items: int,
                           num_entities: int) -> Tensor:
        if item_entity is None:
            if num_items > num_entities:
                raise ValueError(f"'item_entity' is required when "
                                 f"'num_items' ({num_items}) exceeds "
                                 f"'num_entities' ({num_entities})")
            return torch.arange(num_items)
        item_entity = torch.as_tensor(item_entity)
        if item_entity.dtype.is_floating_point or item_entity.dim() != 1 \
                or item_entity.numel() != num_items:
            raise ValueError(f"'item_entity' must be an integer vector of "
                             f"shape [{num_items}] (got {item_entity.dtype} "
                             f"of shape {list(item_entity.size())})")
        if item_entity.numel() > 0 and (int(item_entity.min()) < -1 or int(
                item_entity.max()) >= num_entities):
            raise ValueError(f"'item_entity' must hold entity ids in "
                             f"[0, {num_entities - 1}] or -1 (got values "
                             f"from {int(item_entity.min())} to "
                             f"{int(item_entity.max())})")
        return item_entity.long().clone()

    def reset_parameters(self):
        r"""Resets all learnable parameters: Xavier-uniform rows rescaled to
        unit :math:`L_2` norm, as the reference initialises them."""
        for emb in (self.user_emb, self.item_emb, self.pref_emb,
                    self.pref_norm_emb):
            torch.nn.init.xavier_uniform_(emb.weight)
            with torch.no_grad():
                emb.weight.copy_(F.normalize(emb.weight, p=2, dim=-1))
        if self.kg is not None:
            self.kg.reset_parameters()

    # Preference induction ###################################################

    def _preference_tables(self) -> Tuple[Tensor, Tensor, Tensor]:
        # Returns the attention keys, the translations and the (unscaled)
        # normals of the R preferences, each [R, d].
        pref = self.pref_emb.weight
        pref_normal = F.normalize(self.pref_norm_emb.weight, p=2, dim=-1)
        if self.kg is None:  # TUP
            return pref, pref, pref_normal
        key = pref + self.kg.rel_emb.weight  # p + r
        normal = pref_normal + self.kg.normal()  # w_p + w_r, renormalised
        return key, key / 2, normal

    def item_representation(self, item_index: OptTensor = None) -> Tensor:
        r"""Returns :math:`\hat{\mathbf{i}} = \mathbf{i} + \mathbf{e}_i` of
        :obj:`item_index` (all items if :obj:`None`), :obj:`[*, d]`."""
        if item_index is None:
            item_index = torch.arange(self.num_items,
                                      device=self.item_emb.weight.device)
        item = self.item_emb(item_index)
        if self.kg is None:
            return item
        ent_index = self.item_entity[item_index]
        ent = self.kg.node_emb(ent_index.clamp(min=0))
        return item + ent * (ent_index >= 0).unsqueeze(-1).to(ent.dtype)

    def _logits(self, user: Tensor, item: Tensor, key: Tensor) -> Tensor:
        # user, item: broadcastable [..., d]; key: [R, d] -> [..., R]
        return (user @ key.t() + item @ key.t()) / 2

    def _attention(self, logits: Tensor) -> Tensor:
        # [..., R] logits -> [..., R] attention weights.
        if not self.use_st_gumbel:
            return torch.softmax(logits / self.temperature, dim=-1)
        if self.training:  # Straight-through Gumbel-softmax:
            return F.gumbel_softmax(logits, tau=self.temperature, hard=True,
                                    dim=-1)
        # Evaluation: deterministic arg max, no noise.
        hard = F.one_hot(logits.argmax(dim=-1), logits.size(-1))
        hard = hard.to(logits.dtype)
        if not torch.is_grad_enabled() or not logits.requires_grad:
            return hard
        soft = torch.softmax(logits / self.temperature, dim=-1)
        return hard - soft.detach() + soft

    def preference_logits(self, user_index: Tensor,
                          item_index: Tensor) -> Tensor:
        r"""Returns the attention logits :math:`\mathbf{a}` of the
        (user, item) pairs over the preferences, :obj:`[batch_size, R]`."""
        self.check_pairs(user_index, item_index)
        key, _, _ = self._preference_tables()
        return self._logits(self.user_emb(user_index),
                            self.item_representation(item_index), key)

    def preference_attention(self, user_index: Tensor,
                             item_index: Tensor) -> Tensor:
        r"""Returns the attention weights :math:`\boldsymbol{\alpha}` used to
        score the (user, item) pairs, :obj:`[batch_size, R]`: a softmax, or
        a one-hot vector for the hard strategy (random in training mode,
        the arg max in evaluation mode)."""
        return self._attention(self.preference_logits(user_index, item_index))

    def _score(self, user: Tensor, item: Tensor) -> Tensor:
        # user, item: broadcastable [..., d] -> scores [...]
        key, trans, normal = self._preference_tables()  # [R, d] each
        logits = self._logits(user, item, key)  # [..., R]
        if (self.use_st_gumbel and not self.training
                and not (torch.is_grad_enabled() and logits.requires_grad)):
            # Deterministic hard attention: gather the arg max preference
            # instead of multiplying by one-hot weights.
            index = logits.argmax(dim=-1)  # [...]
            size = index.size() + (trans.size(-1), )
            index = index.view(-1)
            trans = trans.index_select(0, index).view(size)  # [..., d]
            normal = F.normalize(normal, p=2, dim=-1)
            normal = normal.index_select(0, index).view(size)  # [..., d]
        else:
            alpha = self._attention(logits)  # [..., R]
            trans = alpha @ trans  # [..., d]
            normal = F.normalize(alpha @ normal, p=2, dim=-1)  # [..., d]
        # u_perp + p - i_perp = (u - i) - (w^T (u - i)) w + p
        diff = user - item  # [..., d]
        diff = TransH.project(diff, normal) + trans
        return -diff.norm(p=self.p_norm, dim=-1)

    def forward(self, user_index: Tensor, item_index: Tensor) -> Tensor:
        r"""Returns the scores of the (user, item) pairs, :obj:`[batch_size]`,
        higher is better.

        Args:
            user_index (torch.Tensor): The users, :obj:`[batch_size]`.
            item_index (torch.Tensor): The items, :obj:`[batch_size]`.
        """
        self.check_pairs(user_index, item_index)
        return self._forward(user_index, item_index)

    def check_pairs(self, user_index: OptTensor = None,
                    item_index: OptTensor = None,
                    neg_item_index: OptTensor = None) -> None:
        r"""Raises a :class:`ValueError` naming the argument if a user or
        item id is out of range (a :class:`TypeError` if it is not an
        integer tensor), instead of an index error deep inside the
        embedding lookup or a device-side assertion on a GPU."""
        check_index((user_index, self.num_users, 'user_index'),
                    (item_index, self.num_items, 'item_index'),
                    (neg_item_index, self.num_items, 'neg_item_index'))

    def _forward(self, user_index: Tensor, item_index: Tensor) -> Tensor:
        user = self.user_emb(user_index)  # [B, d]
        item = self.item_representation(item_index)  # [B, d]
        return self._score(user, item)

    def full_scores(self, user_index: Tensor,
                    chunk_size: Optional[int] = None) -> Tensor:
        r"""Returns the scores of all items for every user,
        :obj:`[batch_size, num_items]`, equal to :meth:`forward` of every
        pair.

        Items are scored in chunks with broadcast tensor operations; a chunk
        of :math:`C` items needs a few :obj:`[batch_size, C,
        hidden_channels]` tensors.

        Args:
            user_index (torch.Tensor): The users, :obj:`[batch_size]`.
            chunk_size (int, optional): Items scored at once; by default as
                many as keep one intermediate tensor under :obj:`2**22`
                elements. (default: :obj:`None`)
        """
        if chunk_size is None:
            chunk_size = max(1, CHUNK_ELEMENTS //
                             max(1, user_index.numel() * self.hidden_channels))
        if chunk_size < 1:
            raise ValueError(f"Invalid 'chunk_size' (got {chunk_size})")
        self.check_pairs(user_index)
        user = self.user_emb(user_index)  # [B, d]
        items = torch.arange(self.num_items, device=user.device)
        if self._closed_form_ok():
            # [B, C, R] intermediates instead of [B, C, d]:
            chunk_size = max(chunk_size * self.hidden_channels //
                             max(1, self.num_relations), 1)
            tables = self._closed_form_tables()
            return torch.cat([
                self._score_l2_all(user, self.item_representation(index),
                                   tables)
                for index in items.split(chunk_size)
            ], dim=-1)
        if self._deterministic_hard():
            key, trans, normal = self._preference_tables()
            normal = F.normalize(normal, p=2, dim=-1)
            return torch.cat([
                self._score_hard_all(user, self.item_representation(index),
                                     key, trans, normal)
                for index in items.split(chunk_size)
            ], dim=-1)
        user = user.unsqueeze(1)  # [B, 1, d]
        out = []
        for item_index in items.split(chunk_size):
            item = self.item_representation(item_index).unsqueeze(0)
            out.append(self._score(user, item))  # [B, C]
        return torch.cat(out, dim=-1)

    def _closed_form_ok(self) -> bool:
        # The L2 score of all pairs from inner products, in evaluation mode
        # (deterministic attention) without gradients.
        return (self.p_norm == 2 and not self.training
                and not torch.is_grad_enabled())

    def _deterministic_hard(self) -> bool:
        # The arg max attention of evaluation mode, without gradients.
        return (self.use_st_gumbel and not self.training
                and not torch.is_grad_enabled())

    def _score_hard_all(self, user: Tensor, item: Tensor, key: Tensor,
                        trans: Tensor, normal: Tensor) -> Tensor:
        r"""The scores of all pairs of :obj:`user` :obj:`[B, d]` and
        :obj:`item` :obj:`[C, d]` under the arg max preference,
        :obj:`[B, C]`, for any :math:`p`. As the projection is linear,
        :math:`\mathbf{u}_{\perp} + \mathbf{p}_k -
        \hat{\mathbf{i}}_{\perp}` is the difference of the users projected
        onto every hyperplane :math:`k` (plus :math:`\mathbf{p}_k`),
        :obj:`[R, B, d]`, and the items projected onto every hyperplane,
        :obj:`[R, C, d]`; each pair gathers its two rows."""
        index = ((user @ key.t()).unsqueeze(1) +
                 (item @ key.t()).unsqueeze(0)).argmax(dim=-1)  # [B, C]
        num_users, num_items = index.size()
        normal = normal.unsqueeze(1)  # [R, 1, d]
        users = TransH.project(user.unsqueeze(0), normal) + trans.unsqueeze(1)
        items = TransH.project(item.unsqueeze(0), normal)
        arange = torch.arange(max(num_users, num_items), device=index.device)
        row = (index * num_users + arange[:num_users].view(-1, 1)).view(-1)
        col = (index * num_items + arange[:num_items].view(1, -1)).view(-1)
        diff = (users.reshape(-1, user.size(-1)).index_select(0, row) -
                items.reshape(-1, item.size(-1)).index_select(0, col))
        return -diff.norm(p=self.p_norm, dim=-1).view(num_users, num_items)

    def _closed_form_tables(self) -> Tuple[Tensor, ...]:
        key, trans, normal = self._preference_tables()  # [R, d] each
        if self.use_st_gumbel:  # The arg max picks one unit normal.
            normal = F.normalize(normal, p=2, dim=-1)
        return (key, trans, normal, normal @ normal.t(), trans @ trans.t(),
                normal @ trans.t())

    def _score_l2_all(self, user: Tensor, item: Tensor,
                      tables: Tuple[Tensor, ...]) -> Tensor:
        r"""The :math:`L_2` scores of all pairs of :obj:`user` :obj:`[B, d]`
        and :obj:`item` :obj:`[C, d]`, :obj:`[B, C]`, equal to
        :meth:`_score` up to rounding. With :math:`\mathbf{d} = \mathbf{u}
        - \hat{\mathbf{i}}`, the induced translation :math:`\mathbf{t}` and
        unit normal :math:`\mathbf{w}`,

        .. math::
            \| \mathbf{d} - (\mathbf{w}^{\top} \mathbf{d}) \mathbf{w} +
            \mathbf{t} \|_2^2 = \| \mathbf{d} \|^2 -
            (\mathbf{w}^{\top} \mathbf{d})^2 + \| \mathbf{t} \|^2 +
            2 \mathbf{d}^{\top} \mathbf{t} - 2 (\mathbf{w}^{\top}
            \mathbf{d}) (\mathbf{w}^{\top} \mathbf{t}),

        and every term is a combination of inner products of users, items
        and the :math:`R` preference tables weighted by the attention, so
        that nothing of size :obj:`[B, C, d]` is formed.
        """
        key, trans, normal, g_nn, g_tt, g_nt = tables
        # The logits a / tau (a / 2 suffices for the arg max), scaled on the
        # [R, d] table rather than on [B, C, R]:
        key = key / (2 if self.use_st_gumbel else 2 * self.temperature)
        logits = (user @ key.t()).unsqueeze(1) + (item @ key.t()).unsqueeze(0)
        dd = ((user * user).sum(-1, keepdim=True) +
              (item * item).sum(-1).unsqueeze(0) - 2 * user @ item.t())
        un, inn = user @ normal.t(), item @ normal.t()  # [B, R], [C, R]
        ut, it = user @ trans.t(), item @ trans.t()
        if self.use_st_gumbel:  # Deterministic arg max:
            index = logits.argmax(dim=-1)  # [B, C]
            wd = un.gather(1, index) - inn.t().gather(0, index)
            dt = ut.gather(1, index) - it.t().gather(0, index)
            tt = g_tt.diagonal()[index]
            wt = g_nt.diagonal()[index]
        else:
            alpha = torch.softmax(logits, dim=-1)
            wd = (torch.bmm(alpha, un.unsqueeze(-1)).squeeze(-1) -
                  (alpha * inn.unsqueeze(0)).sum(-1))
            dt = (torch.bmm(alpha, ut.unsqueeze(-1)).squeeze(-1) -
                  (alpha * it.unsqueeze(0)).sum(-1))
            norm = ((alpha @ g_nn) * alpha).sum(-1).sqrt().clamp_min(1e-12)
            tt = ((alpha @ g_tt) * alpha).sum(-1)
            wt = ((alpha @ g_nt) * alpha).sum(-1) / norm
            wd = wd / norm
        sq = dd - wd * wd + tt + 2 * dt - 2 * wd * wt
        return -sq.clamp_min(0).sqrt()

    def batch_scores(self, batch: Any) -> Tensor:
        r"""Scores of all items for the users :obj:`batch.user_index` of a
        mini-batch, :obj:`[batch_size, num_items]`."""
        user_index = _field(batch, 'user_index')
        if user_index is None:
            raise ValueError(f"KTUP.batch_scores needs 'user_index' (got "
                             f"fields {_fields(batch)})")
        return self.full_scores(user_index)

    @torch.no_grad()
    def recommend(self, batch: Any, k: int = 20,
                  exclude: OptTensor = None) -> Tensor:
        r"""Returns the top-:obj:`k` items of every user, best first,
        :obj:`[batch_size, k]`.

        Args:
            batch (torch.Tensor or any): The users, :obj:`[batch_size]`, or
                a mini-batch with :obj:`user_index`.
            k (int, optional): The number of recommendations.
                (default: :obj:`20`)
            exclude (torch.Tensor, optional): :obj:`[2, M]` pairs (row of
                the batch, item) never to recommend, such as the training
                items; it may be empty (a user without training items).
                Where fewer than :obj:`k` items are left, the excluded ones
                fill the end of the row. (default: :obj:`None`)
        """
        if k < 1:
            raise ValueError(f"Invalid 'k' (got {k})")
        user_index = batch if isinstance(batch, Tensor) else \
            _field(batch, 'user_index')
        if user_index is None:
            raise ValueError(f"KTUP.recommend needs users or a batch with "
                             f"'user_index' (got fields {_fields(batch)})")
        if exclude is not None:
            self.check_exclude(exclude, user_index.numel())
        return top_k(self.full_scores(user_index), k, exclude)

    def check_exclude(self, exclude: Tensor, num_rows: int) -> None:
        if exclude.dim() != 2 or exclude.size(0) != 2:
            raise ValueError(f"'exclude' must have shape [2, M] (got "
                             f"{list(exclude.size())})")
        check_index((exclude[0], num_rows, 'exclude[0]'),
                    (exclude[1], self.num_items, 'exclude[1]'))

    @torch.no_grad()
    def explain(
        self,
        user_index: Tensor,
        item_index: Tensor,
        relation_names: Optional[Sequence[str]] = None,
    ) -> List[Dict[str, Any]]:
        r"""Explains the (user, item) pairs by the induced preferences.

        Returns one dictionary per pair with the :obj:`'user'`, the
        :obj:`'item'`, the :obj:`'probabilities'` over the :math:`R`
        preferences (:math:`\mathrm{softmax}(\mathbf{a} / \tau)`, list of
        floats), the most likely :obj:`'relation'` id and its
        :obj:`'relation_name'` (:obj:`None` without :obj:`relation_names`).
        The most likely relation is the one the hard attention picks in
        evaluation mode.

        Args:
            user_index (torch.Tensor): The users, :obj:`[batch_size]`.
            item_index (torch.Tensor): The items, :obj:`[batch_size]`.
            relation_names (list of str, optional): The name of every
                relation. (default: :obj:`None`)
        """
        if relation_names is not None and \
                len(relation_names) != self.num_relations:
            raise ValueError(f"'relation_names' must name all "
                             f"{self.num_relations} relations (got "
                             f"{len(relation_names)})")
        user_index, item_index = user_index.view(-1), item_index.view(-1)
        logits = self.preference_logits(user_index, item_index)
        prob = torch.softmax(logits / self.temperature, dim=-1)  # [B, R]
        top = logits.argmax(dim=-1)  # [B]
        out = []
        for user, item, p, rel in zip(user_index.tolist(),
                                      item_index.tolist(), prob.tolist(),
                                      top.tolist()):
            out.append({
                'user': user,
                'item': item,
                'probabilities': p,
                'relation': rel,
                'relation_name': (None if relation_names is None else
                                  relation_names[rel]),
            })
        return out

    # Losses #################################################################

    def rec_loss(self, user_index: Tensor, pos_item_index: Tensor,
                 neg_item_index: Tensor) -> Tensor:
        r"""The recommendation loss: BPR
        :math:`-\log \sigma(g(u, i) - g(u, j))` averaged over the batch,
        plus :obj:`orthogonal_weight` times the orthogonality constraint
        :math:`\sum_p (\mathbf{w}_p^{\top} \mathbf{p})^2 / \|\mathbf{p}\|^2`
        summed over all preferences (as the reference), plus the optional
        :math:`L_2` penalty.

        Args:
            user_index (torch.Tensor): The users, :obj:`[batch_size]`.
            pos_item_index (torch.Tensor): Their positive items.
            neg_item_index (torch.Tensor): Their sampled negative items.
        """
        self.check_pairs(user_index, pos_item_index, neg_item_index)
        if user_index.numel() == 0:
            raise ValueError("The loss of an empty batch is undefined (got "
                             "an empty 'user_index')")
        # One lookup per table (see TransH.lookup): both items at once.
        user = self.user_emb(user_index)  # [B, d]
        items = self.item_representation(
            torch.cat([pos_item_index, neg_item_index]))  # [2B, d]
        pos_score, neg_score = self._score(user.repeat(2, 1),
                                           items).chunk(2)
        loss = -F.logsigmoid(pos_score - neg_score).mean()
        if self.orthogonal_weight != 0:
            normal = F.normalize(self.pref_norm_emb.weight, p=2, dim=-1)
            loss = loss + self.orthogonal_weight * orthogonal_penalty(
                self.pref_emb.weight, normal).sum()
        if self.l2_weight != 0:
            l2 = (user.pow(2).sum() + self.item_emb(
                torch.cat([pos_item_index, neg_item_index])).pow(2).sum())
            loss = loss + self.l2_weight * l2 / user_index.numel()
        return loss

    def kg_loss(self, head_index: Tensor, rel_type: Tensor,
                tail_index: Tensor) -> Tensor:
        r"""The knowledge-graph loss, :obj:`kg_weight` times the sum of the
        :class:`TransH` margin ranking loss against triplets corrupted by
        :meth:`TransH.random_sample`, :obj:`orthogonal_weight` times the
        orthogonality constraint :math:`(\mathbf{w}_r^{\top}
        \mathbf{d}_r)^2 / \|\mathbf{d}_r\|^2` and :obj:`norm_weight` times
        the norm constraints :math:`\max(0, \|\mathbf{x}\|_2^2 - 1)` on the
        entities and relations of the positive and corrupted triplets. As
        in the reference, the constraints are summed over the rows of both
        triplets; every term is then divided by the batch size.

        Args:
            head_index (torch.Tensor): The head entities, :obj:`[batch_size]`.
            rel_type (torch.Tensor): The relations, :obj:`[batch_size]`.
            tail_index (torch.Tensor): The tail entities, :obj:`[batch_size]`.
        """
        kg = self._require_kg('kg_loss')
        # TransH's margin loss, with KTUP's margin, and the embeddings of the
        # positive and corrupted triplets for the constraints:
        loss, head, tail, rel_type = kg.loss(head_index, rel_type,
                                             tail_index, margin=self.margin,
                                             return_embeddings=True)
        ent = (head, tail)
        num_triplets = max(1, head_index.numel())
        rel = kg.rel_emb(rel_type)  # [2B, d]
        if self.orthogonal_weight != 0:
            ortho = orthogonal_penalty(rel, kg.normal(rel_type)).sum()
            loss = loss + self.orthogonal_weight * ortho / num_triplets
        if self.norm_weight != 0:
            ent = torch.cat(ent)
            norm = (F.relu(ent.pow(2).sum(dim=-1) - 1.0).sum() +
                    F.relu(rel.pow(2).sum(dim=-1) - 1.0).sum())
            loss = loss + self.norm_weight * norm / num_triplets
        return self.kg_weight * loss

    def batch_loss(self, batch: Any) -> Tensor:
        r"""The training loss of a mini-batch (a
        :class:`~torch_geometric.data.Data` object or a dictionary):
        :meth:`rec_loss` if it holds :obj:`user_index`,
        :obj:`pos_item_index` and :obj:`neg_item_index`, :meth:`kg_loss` if
        it holds :obj:`head_index`, :obj:`rel_type` and :obj:`tail_index`,
        and their sum if it holds both."""
        has_rec = all(_field(batch, key) is not None for key in REC_KEYS)
        has_kg = all(_field(batch, key) is not None for key in KG_KEYS)
        if has_kg and self.kg is None:
            raise ValueError(f"KTUP(use_kg=False) (TUP) has no "
                             f"knowledge-graph part and cannot train on a "
                             f"batch of triplets (got fields "
                             f"{_fields(batch)})")
        if not has_rec and not has_kg:
            raise ValueError(f"A KTUP batch needs the fields {REC_KEYS} or "
                             f"{KG_KEYS} (got fields {_fields(batch)})")
        losses = []
        if has_rec:
            losses.append(self.rec_loss(*[_field(batch, k) for k in REC_KEYS]))
        if has_kg:
            losses.append(self.kg_loss(*[_field(batch, k) for k in KG_KEYS]))
        return losses[0] if len(losses) == 1 else losses[0] + losses[1]

    # Knowledge-graph completion #############################################

    def kg_scores_all_tails(self, head_index: Tensor,
                            rel_type: Tensor) -> Tensor:
        r"""Scores every entity as the tail of :math:`(h, r, ?)`,
        :obj:`[batch_size, num_entities]`, see
        :meth:`TransH.score_all_tails`."""
        kg = self._require_kg('kg_scores_all_tails')
        return kg.score_all_tails(head_index, rel_type)

    def kg_scores_all_heads(self, rel_type: Tensor,
                            tail_index: Tensor) -> Tensor:
        r"""Scores every entity as the head of :math:`(?, r, t)`,
        :obj:`[batch_size, num_entities]`, see
        :meth:`TransH.score_all_heads`."""
        kg = self._require_kg('kg_scores_all_heads')
        return kg.score_all_heads(rel_type, tail_index)

    def _require_kg(self, name: str) -> TransH:
        if self.kg is None:
            raise ValueError(f"KTUP.{name} needs the knowledge-graph part, "
                             f"but the model was built with use_kg=False "
                             f"(TUP)")
        return self.kg

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_users}, '
                f'{self.num_items}, num_entities={self.num_entities}, '
                f'num_relations={self.num_relations}, '
                f'hidden_channels={self.hidden_channels}, '
                f'use_st_gumbel={self.use_st_gumbel}, '
                f'use_kg={self.use_kg})')


def _field(batch: Any, key: str) -> Optional[Tensor]:
    if isinstance(batch, Mapping):
        return batch.get(key)
    return getattr(batch, key, None)


def _fields(batch: Any) -> List[str]:
    if isinstance(batch, Mapping):
        return sorted(batch.keys())
    keys = getattr(batch, 'keys', None)
    if callable(keys):
        return sorted(keys())
    return sorted(vars(batch)) if hasattr(batch, '__dict__') else []


__all__ = ['KTUP']
