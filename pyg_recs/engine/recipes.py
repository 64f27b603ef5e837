r"""Recipes: how each model is assembled from a dataset for training.

A recipe (:class:`~pyg_recs.engine.Recipe`) turns plain settings into an
:class:`Experiment`: the model, the train/validation/test loaders and the
evaluation settings; it also holds the model's settings, from which the
command line is generated, and its trainer defaults.
:func:`~pyg_recs.engine.run` (in :mod:`pyg_recs.engine.runner`) trains any
of them with the one :class:`~pyg_recs.engine.Trainer`. The CLI and the
benchmarks call these functions, as a user would.
"""
import functools
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Optional

import torch
from torch import Tensor

from pyg_recs.engine.settings import (
    Recipe,
    Setting,
    SettingError,
    non_negative_int,
    positive_float,
    positive_int,
    unit_float,
)
from pyg_recs.metrics import KnownTails, kg_completion


@dataclass
class Experiment:
    r"""Everything :func:`run` needs to train and evaluate one model."""
    model: torch.nn.Module
    train_loader: Iterable
    valid_loader: Optional[Iterable]
    test_loader: Iterable
    monitor: str
    metrics: tuple
    ks: tuple = (10, 20)
    stats: Dict[str, Any] = field(default_factory=dict)
    eval_fn: Optional[Callable] = None
    test_fn: Optional[Callable] = None
    recommend_fn: Optional[Callable] = None


# SR-GNN ######################################################################

SESSION_DATASETS = ('diginetica', 'yoochoose1_64', 'yoochoose1_4',
                    'srgnn-format')


def session_dataset(name: str, root: str, split: str,
                    val_ratio: float = 0.1, val_split: str = 'last'):
    r"""Opens a session dataset by name.

    :obj:`'srgnn-format'` reads the SR-GNN pickles :obj:`train.txt` and
    :obj:`test.txt` from :obj:`root/raw`. :obj:`'diginetica'` and the
    Yoochoose fractions process the raw click files with the SR-GNN protocol
    (downloading them when absent); if :obj:`root/raw` holds the already
    preprocessed SR-GNN pickles instead, those are used.
    """
    from pyg_recs.datasets import SessionDataset
    if name not in SESSION_DATASETS:
        raise ValueError(f"Invalid session dataset (got '{name}'); choose "
                         f"from {SESSION_DATASETS}")
    raw = osp.join(root, 'raw')
    has_pickles = all(
        osp.exists(osp.join(raw, f)) for f in ('train.txt', 'test.txt'))
    if name == 'srgnn-format' or has_pickles:
        return SessionDataset(root, split, val_ratio=val_ratio,
                              val_split=val_split)
    if name == 'diginetica':
        from pyg_recs.datasets import Diginetica
        return Diginetica(root, split, val_ratio=val_ratio,
                          val_split=val_split)
    from pyg_recs.datasets import Yoochoose
    fraction = '1/64' if name == 'yoochoose1_64' else '1/4'
    return Yoochoose(root, fraction=fraction, split=split,
                     val_ratio=val_ratio, val_split=val_split)


#: The session models and the model settings each takes beyond
#: :obj:`hidden` and :obj:`num_steps`.
SESSION_MODELS: Dict[str, tuple] = {
    'srgnn': ('SRGNN', ()),
    'niser': ('NISER', ('scale', 'dropout', 'max_positions')),
    'gcsan': ('GCSAN', ('num_layers', 'heads', 'omega', 'dropout',
                        'causal')),
    'tagnn': ('TAGNN', ()),
}


def build_session(
    model: str,
    dataset: str,
    root: str,
    hidden: int = 100,
    num_steps: int = 1,
    batch_size: int = 100,
    eval_batch_size: int = 500,
    val_ratio: float = 0.1,
    max_train: Optional[int] = None,
    max_eval: Optional[int] = None,
    device: Any = 'cpu',
    generator: Optional[torch.Generator] = None,
    pad: bool = False,
    val_split: str = 'last',
    **model_kwargs,
) -> Experiment:
    r"""Assembles a session model of the SR-GNN family (:obj:`model` is a
    key of :data:`SESSION_MODELS`) on a session dataset, with the SR-GNN
    reference settings as defaults (hidden size 100, batch size 100, one
    propagation step); :obj:`model_kwargs` are the model's own settings.
    :obj:`pad=True` pads the batches to a few static shapes (see
    :class:`~pyg_recs.loader.SessionLoader`), for CUDA graphs."""
    from pyg_recs.loader import SessionLoader
    from pyg_recs.nn import models

    if model not in SESSION_MODELS:
        raise ValueError(f"Invalid session model (got '{model}'); choose "
                         f"from {sorted(SESSION_MODELS)}")
    cls_name, own = SESSION_MODELS[model]
    unknown = sorted(set(model_kwargs) - set(own))
    if unknown:
        raise SettingError(f"Unknown setting(s) {unknown} for '{model}'; "
                           f"its own settings are {list(own)}")

    splits = {
        split: session_dataset(dataset, root, split, val_ratio, val_split)
        for split in ('train', 'valid', 'test')
    }
    num_items = splits['train'].num_items

    def loader(split, size, shuffle, limit):
        ds = splits[split]
        if len(ds) == 0:
            return None
        indices = torch.arange(len(ds))
        if limit is not None:
            indices = indices[:limit]
        return SessionLoader(ds, size, shuffle=shuffle, device=device,
                             indices=indices,
                             generator=generator if shuffle else None,
                             pad=pad)

    net = getattr(models, cls_name)(num_items, hidden_channels=hidden,
                                    num_steps=num_steps, **model_kwargs)
    item_ids = splits['train'].item_ids

    def recommend_fn(model, query: str, k: int):
        from torch_geometric.data import Batch

        from pyg_recs.data import session_to_graph
        raw = [_parse_id(v, 'item') for v in query.replace(',', ' ').split()]
        if not raw:
            raise ValueError('Give a session as item ids, e.g. "12,7,31"')
        index = torch.searchsorted(item_ids, torch.tensor(raw))
        index = index.clamp(max=item_ids.numel() - 1)
        unknown = [r for r, i in zip(raw, index.tolist())
                   if int(item_ids[i]) != r]
        if unknown:
            raise ValueError(f'Unknown item ids {unknown}: the model was '
                             f'trained on {item_ids.numel()} items')
        batch = Batch.from_data_list([session_to_graph(index.tolist())])
        top = model.recommend(batch.to(model.item_emb.weight.device), k)
        return item_ids[top[0].cpu()].tolist()

    return Experiment(
        model=net,
        train_loader=loader('train', batch_size, True, max_train),
        valid_loader=loader('valid', eval_batch_size, False, max_eval),
        test_loader=loader('test', eval_batch_size, False, max_eval),
        monitor='HR@20',
        metrics=('HR', 'MRR', 'NDCG'),
        stats={
            'num_items': num_items,
            'num_train': len(splits['train']) if max_train is None else
            min(max_train, len(splits['train'])),
            'num_valid': len(splits['valid']),
            'num_test': len(splits['test']),
            'val_split': val_split,
        },
        recommend_fn=recommend_fn,
    )


def build_srgnn(dataset: str, root: str, **kwargs) -> Experiment:
    r"""Assembles SR-GNN, see :func:`build_session`."""
    return build_session('srgnn', dataset, root, **kwargs)


SESSION_SETTINGS: Dict[str, Setting] = {
    'dataset': Setting(str, 'diginetica', 'dataset: diginetica, '
                       'yoochoose1_64, yoochoose1_4 or srgnn-format'),
    'root': Setting(str, None, 'dataset folder (raw files in ROOT/raw); '
                    'default: datasets/<dataset>'),
    'hidden': Setting(positive_int, 100, 'embedding size'),
    'num_steps': Setting(positive_int, None, 'GNN propagation steps '
                         '(default: 1)'),
    'batch_size': Setting(positive_int, 100, 'training sessions per batch'),
    'eval_batch_size': Setting(positive_int, None, 'evaluation sessions '
                               'per batch (default: 500)'),
    'val_ratio': Setting(unit_float, 0.1, 'share of the training examples '
                         'held out for validation'),
    'val_split': Setting(str, 'last', "hold out the most recent training "
                         "examples ('last') or a random share ('random', as "
                         "the SR-GNN reference code)",
                         choices=('last', 'random')),
    'max_train': Setting(positive_int, None, 'use only the first N '
                         'training examples'),
    'max_eval': Setting(positive_int, None, 'use only the first N '
                        'validation and test examples'),
    'pad': Setting(bool, None, 'pad every batch to one of a few static '
                   'shapes (for CUDA graphs; with --compile on CUDA it uses '
                   "mode='reduce-overhead')"),
}
#: The SR-GNN paper's training settings, which its successors share.
SESSION_TRAINER = dict(lr=1e-3, weight_decay=1e-5, lr_step=3,
                       lr_gamma=0.1, epochs=30, patience=10)
#: The model settings of SR-GNN's successors.
MODEL_SETTINGS: Dict[str, Setting] = {
    'scale': Setting(positive_float, None, 'NISER: the scale (inverse '
                     'temperature) of the cosine scores (default: 16)'),
    'max_positions': Setting(positive_int, None, 'NISER: positions with an '
                             'embedding of their own (default: 200)'),
    'num_layers': Setting(positive_int, None, 'GC-SAN: self-attention '
                          'blocks (default: 1)'),
    'heads': Setting(positive_int, None, 'GC-SAN: attention heads '
                     '(default: 1)'),
    'omega': Setting(unit_float, None, 'GC-SAN: weight of the '
                     'self-attention output in the session vector '
                     '(default: 0.6)'),
    'causal': Setting(bool, None, 'GC-SAN: every click attends only to '
                      'the clicks up to it (as RecBole-GNN)'),
}
DROPOUT = {'niser': 0.1, 'gcsan': 0.2}


def session_recipe(model: str, label: str, description: str) -> Recipe:
    r"""The recipe of the session model :obj:`model`."""
    settings = dict(SESSION_SETTINGS)
    for name in SESSION_MODELS[model][1]:
        settings[name] = MODEL_SETTINGS.get(name) or Setting(
            unit_float, None, f'dropout rate (default: {DROPOUT[model]})')
    return Recipe(model, functools.partial(build_session, model),
                  settings=settings, trainer=dict(SESSION_TRAINER),
                  description=description, label=label)


#: Model name to :class:`~pyg_recs.engine.settings.Recipe`; see
#: :func:`register`.
RECIPES: Dict[str, Recipe] = {
    'srgnn': session_recipe('srgnn', 'SR-GNN',
                            'SR-GNN (Wu et al., AAAI 2019)'),
    'niser': session_recipe('niser', 'NISER+', 'NISER+ (Gupta et al., '
                            '2019): normalised item and session vectors'),
    'gcsan': session_recipe('gcsan', 'GC-SAN', 'GC-SAN (Xu et al., IJCAI '
                            '2019): self-attention over the GNN states'),
    'tagnn': session_recipe('tagnn', 'TAGNN', 'TAGNN (Yu et al., SIGIR '
                            '2020): target-aware attention'),
}


def register(name: str, builder: Callable[..., Experiment],
             settings: Optional[Dict[str, Setting]] = None,
             trainer: Optional[Dict[str, Any]] = None,
             description: str = '') -> Recipe:
    r"""Adds a recipe, *e.g.* for a model defined outside pyg_recs:
    :obj:`builder` returns an :class:`Experiment` from the
    :obj:`settings` (which the command line offers as flags), and
    :obj:`trainer` holds the model's trainer defaults (:obj:`lr`,
    :obj:`weight_decay`, :obj:`lr_step`, :obj:`lr_gamma`, :obj:`epochs`,
    :obj:`patience`). Without :obj:`settings` every keyword argument is
    passed on unchecked."""
    recipe = builder if isinstance(builder, Recipe) else Recipe(
        name, builder, settings=dict(settings or {}),
        trainer=dict(trainer or {}), description=description)
    RECIPES[name] = recipe
    return recipe


# KTUP, TUP and TransH #########################################################

def kg_dataset(name: str, root: str, ratios=(0.7, 0.1, 0.2),
               kg_ratios=(0.7, 0.1, 0.2), seed: int = 2019,
               strict: bool = True):
    r"""Opens a knowledge-aware dataset: :obj:`'ml-100k-kg'` (downloaded
    when absent), :obj:`'ktup-format'` (the KTUP reference layout in
    :obj:`root/raw`), or any other name :obj:`NAME` for RecBole atomic files
    :obj:`root/raw/NAME.inter`, :obj:`.kg` and :obj:`.link`."""
    from pyg_recs.datasets import AtomicKGDataset, KTUPDataset, MovieLens100KKG
    if name == 'ml-100k-kg':
        return MovieLens100KKG(root, ratios=ratios, kg_ratios=kg_ratios,
                               seed=seed)
    if name == 'ktup-format':
        return KTUPDataset(root, strict=strict)
    return AtomicKGDataset(root, name, ratios=ratios, kg_ratios=kg_ratios,
                           seed=seed, strict=strict)


def build_ktup(
    dataset: str,
    root: str,
    variant: str = 'ktup',
    hidden: int = 100,
    batch_size: int = 256,
    kg_batch_size: int = 256,
    eval_batch_size: int = 256,
    rec_steps: int = 7,
    kg_steps: int = 3,
    use_st_gumbel: bool = False,
    margin: float = 1.0,
    p_norm: float = 1.0,
    kg_eval_max: Optional[int] = 1000,
    strict: bool = True,
    seed: int = 2019,
    device: Any = 'cpu',
    generator: Optional[torch.Generator] = None,
) -> Experiment:
    r"""Assembles KTUP (:obj:`variant='ktup'`), TUP (KTUP without the
    knowledge graph, :obj:`'tup'`) or TransH alone (:obj:`'transh'`) on a
    knowledge-aware dataset. KTUP alternates :obj:`rec_steps`
    recommendation batches with :obj:`kg_steps` KG batches, as the
    reference does (7:3)."""
    from pyg_recs.datasets.knowledge_graph import RATES, RELATION
    from pyg_recs.loader.kg_loader import (
        InteractionLoader,
        JointLoader,
        RankingEvalLoader,
        TripleLoader,
    )
    from pyg_recs.nn.kge import TransH
    from pyg_recs.nn.models import KTUP

    if variant not in ('ktup', 'tup', 'transh'):
        raise ValueError(f"Invalid 'variant' (got '{variant}')")
    ds = kg_dataset(dataset, root, seed=seed, strict=strict)
    data = ds[0]
    num_users = data['user'].num_nodes
    num_items = data['item'].num_nodes
    num_entities = data['entity'].num_nodes
    relation_names = list(data.relation_names)
    num_relations = len(relation_names)

    rates = data[RATES]
    user, item = rates.edge_index
    train_u, train_i = user[rates.train_mask], item[rates.train_mask]
    val_u, val_i = user[rates.val_mask], item[rates.val_mask]
    test_u, test_i = user[rates.test_mask], item[rates.test_mask]

    kg = data[RELATION]
    head, tail = kg.edge_index
    rel = kg.edge_type
    known = KnownTails(torch.stack([head, rel, tail]).to(device),
                       num_relations)

    def split_triples(mask):
        return head[mask], rel[mask], tail[mask]

    kg_train = split_triples(kg.train_mask)
    kg_valid = [t.to(device) for t in split_triples(kg.val_mask)]
    kg_test = [t.to(device) for t in split_triples(kg.test_mask)]

    rec_loader = InteractionLoader(train_u, train_i, num_items,
                                   batch_size=batch_size, shuffle=True,
                                   generator=generator)
    kg_loader = TripleLoader(*kg_train, batch_size=kg_batch_size,
                             shuffle=True, generator=generator)
    exclude_valid = (train_u, train_i)
    exclude_test = (torch.cat([train_u, val_u]), torch.cat([train_i, val_i]))
    valid_loader = RankingEvalLoader(val_u, val_i, *exclude_valid,
                                     num_users=num_users,
                                     batch_size=eval_batch_size)
    test_loader = RankingEvalLoader(test_u, test_i, *exclude_test,
                                    num_users=num_users,
                                    batch_size=eval_batch_size)

    if variant == 'transh':
        model = TransH(num_entities, num_relations, hidden, margin=margin,
                       p_norm=p_norm)
        scores_fn = model.score_all_tails
        train_loader = kg_loader
    else:
        model = KTUP(num_users, num_items, num_entities, num_relations,
                     hidden_channels=hidden, item_entity=data['item'].entity,
                     use_st_gumbel=use_st_gumbel, use_kg=variant == 'ktup',
                     margin=margin, p_norm=p_norm)
        scores_fn = model.kg_scores_all_tails
        train_loader = JointLoader(rec_loader, kg_loader, rec_steps,
                                   kg_steps) if variant == 'ktup' \
            else rec_loader

    def kg_eval(triples, max_triples):
        def fn(model):
            model.eval()
            return kg_completion(scores_fn, *triples, known=known,
                                 batch_size=eval_batch_size,
                                 max_triples=max_triples)
        return fn

    has_kg = variant != 'tup'
    raw_item = data['item'].raw_id
    raw_user = data['user'].raw_id

    def recommend_fn(model, query: str, k: int):
        if variant == 'transh':
            raise ValueError('TransH alone gives no recommendations')
        ids = raw_user.tolist() if isinstance(raw_user, Tensor) \
            else list(raw_user)
        key = _parse_id(query.strip(), 'user') \
            if isinstance(raw_user, Tensor) else query
        if key not in ids:
            raise ValueError(f"Unknown user id '{query}'")
        u = ids.index(key)
        seen = train_i[train_u == u]
        exclude = torch.stack([torch.zeros_like(seen), seen]).to(device)
        top = model.recommend(torch.tensor([u], device=device), k,
                              exclude=exclude)[0].cpu()
        explained = model.explain(torch.full_like(top, u).to(device),
                                  top.to(device), relation_names)
        items = raw_item[top].tolist() if isinstance(raw_item, Tensor) \
            else [raw_item[i] for i in top.tolist()]
        return [{'item': it, 'because': ex['relation_name'],
                 'preference': round(max(ex['probabilities']), 4)}
                for it, ex in zip(items, explained)]

    metrics = ('Precision', 'Recall', 'F1', 'Hit', 'NDCG')
    return Experiment(
        model=model,
        train_loader=train_loader,
        valid_loader=valid_loader if variant != 'transh' else _Empty(),
        test_loader=test_loader if variant != 'transh' else _Empty(),
        monitor='Recall@10' if variant != 'transh' else 'KG_Hits@10',
        metrics=metrics,
        stats={
            'num_users': num_users,
            'num_items': num_items,
            'num_entities': num_entities,
            'num_relations': num_relations,
            'num_train': int(train_u.numel()),
            'num_valid': int(val_u.numel()),
            'num_test': int(test_u.numel()),
            'num_kg_train': int(kg_train[0].numel()),
        },
        eval_fn=kg_eval(kg_valid, kg_eval_max) if variant == 'transh'
        else None,
        test_fn=kg_eval(kg_test, kg_eval_max) if has_kg else None,
        recommend_fn=recommend_fn,
    )


def _parse_id(text: str, what: str) -> int:
    r"""A numeric id of a CLI query, with a clear error for text or an id
    beyond int64."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"Invalid {what} id '{text}' in --query: expected "
                         f"an integer") from None
    if not -2**63 <= value < 2**63:
        raise ValueError(f"Unknown {what} id '{text}': it is beyond the "
                         f"64-bit range of any id")
    return value


class _Empty:
    r"""A loader without batches (models evaluated by :obj:`eval_fn`)."""
    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0


KG_SETTINGS: Dict[str, Setting] = {
    'dataset': Setting(str, 'ml-100k-kg', 'dataset: ml-100k-kg, '
                       'ktup-format, or NAME for atomic files '
                       'ROOT/raw/NAME.inter, .kg, .link'),
    'root': SESSION_SETTINGS['root'],
    'hidden': Setting(positive_int, 100, 'embedding size'),
    'batch_size': Setting(positive_int, 256, 'interactions per batch'),
    'kg_batch_size': Setting(positive_int, None, 'KG triples per batch '
                             '(default: 256)'),
    'eval_batch_size': Setting(positive_int, None, 'users per evaluation '
                               'batch (default: 256)'),
    'rec_steps': Setting(non_negative_int, None, 'recommendation batches per '
                         'round (ktup; default: 7)'),
    'kg_steps': Setting(non_negative_int, None, 'KG batches per round (ktup; '
                        'default: 3)'),
    'use_st_gumbel': Setting(bool, None, 'hard preference attention '
                             '(straight-through Gumbel-softmax; ktup, tup)'),
    'margin': Setting(float, None, 'KG margin (ktup, transh; '
                      'default: 1)'),
    'p_norm': Setting(positive_float, None, 'norm of the translation '
                      'distance (default: 1)'),
    'kg_eval_max': Setting(non_negative_int, None, 'KG completion: '
                           'evaluate at most N triples (0: none; default: '
                           '1000)'),
    'strict': Setting(bool, None, 'atomic files: drop surplus trailing '
                      'fields with a warning instead of failing',
                      flag='--lenient', switch_value=False),
}
#: KTUP's training settings (the reference's Adam, no decay).
KG_TRAINER = dict(lr=5e-3, weight_decay=0.0, lr_step=0, lr_gamma=0.1,
                  epochs=50, patience=10)
for _variant, _label, _text in (
        ('ktup', 'KTUP', 'KTUP (Cao et al., WWW 2019)'),
        ('tup', 'TUP', 'TUP: KTUP without the knowledge graph'),
        ('transh', 'TransH', 'TransH alone: KG completion')):
    RECIPES[_variant] = Recipe(
        _variant, functools.partial(build_ktup, variant=_variant),
        settings=dict(KG_SETTINGS), trainer=dict(KG_TRAINER),
        description=_text, label=_label)
