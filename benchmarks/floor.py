r"""How far each hot path is from its arithmetic floor.

.. code-block:: bash

    python benchmarks/floor.py --srgnn-root datasets/diginetica \
        --srgnn-raw-from ../shared/data/diginetica \
        --ktup-raw-from ../shared/data/ml-100k-kg --tag 2026-12-04-cpu

For every hot path it times, in the same process and alternately:

(a) the path as the library runs it: :meth:`Trainer.train_epoch` over the
    first ``--steps`` training batches of the real loader (loading,
    forward, backward, optimiser), or :meth:`Trainer.evaluate` over the
    first ``--eval-batches`` evaluation batches (scores, top-k, metrics);
(b) its unavoidable arithmetic alone, on the same shapes, as straight-line
    tensor code on pre-built inputs:

    - ``srgnn-train``: the score matmul :math:`\mathbf{S} \mathbf{V}^\top`
      (batch x hidden by hidden x items) forward and backward, log-softmax
      + NLL forward and backward, and the fused Adam update over the
      same parameters (every parameter of the model: Adam with an L2
      penalty updates all of them each step);
    - ``srgnn-eval``: the score matmul and the top-20 of every row;
    - ``ktup-train``: for each batch of the same 7:3 stream of
      recommendation and KG batches, the embedding gathers and the
      scoring arithmetic of the batch (preference attention over the
      :math:`R` relations, hyperplane projection, distance, BPR or
      margin loss, with the penalties) forward and backward, and the
      fused Adam update over all parameters;
    - ``ktup-eval``: the scores of every (user, item) pair under the soft
      preference attention and the top-10 of every row after masking the
      training items; for the :math:`L_2` distance in closed form (the
      :math:`[B, C, R]` attention and its three contractions), for other
      norms from the :math:`[B, C, d]` differences, over item chunks.

and writes ``<out-dir>/<tag>-floor.json`` with, per path, the seconds of
both (medians over ``--repeats``), ``over_floor`` = (a) / (b), and a
profile of (a): the operators that take its time, from
:mod:`torch.profiler`.
"""
import argparse
import datetime
import os
import os.path as osp
import statistics
import sys
import time
from typing import Any, Callable, Dict, List

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(HERE)
sys.path.insert(0, REPO)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

PATHS = ('srgnn-train', 'srgnn-eval', 'ktup-train', 'ktup-eval')


class _Take:
    r"""The first :obj:`n` batches of a loader, as a loader (with its
    :obj:`len`), so that the trainer runs its own loop over real data."""
    def __init__(self, loader, n: int) -> None:
        self.loader, self.n = loader, n

    def __len__(self) -> int:
        return min(self.n, len(self.loader))

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if i >= self.n:
                break
            yield batch


def _timed(fn: Callable[[], Any], device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _sync(device) -> None:
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def _adam_like(model, device):
    from pyg_recs.engine.trainer import _fused_ok
    params = [torch.nn.Parameter(p.detach().clone())
              for p in model.parameters()]
    for p in params:
        p.grad = torch.zeros_like(p)
    return params, torch.optim.Adam(params, lr=1e-3, weight_decay=1e-5,
                                    fused=_fused_ok(torch.device(device)))


def _profile(fn: Callable[[], Any], top: int = 12) -> List[Dict[str, Any]]:
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        fn()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1
    rows = sorted(events, key=lambda e: e.self_cpu_time_total,
                  reverse=True)[:top]
    return [{'op': e.key, 'calls': e.count,
             'self_ms': e.self_cpu_time_total / 1e3,
             'share': e.self_cpu_time_total / total} for e in rows]


def _measure(library: Callable[[], Any], floor: Callable[[], Any],
             repeats: int, device) -> Dict[str, Any]:
    library()  # Warm-up (allocator, lazy initialisation, first batches).
    floor()
    lib, low = [], []
    for _ in range(repeats):  # Alternating: both see the same machine.
        lib.append(_timed(library, device))
        low.append(_timed(floor, device))
    a, b = statistics.median(lib), statistics.median(low)
    return {'library_seconds': a, 'floor_seconds': b,
            'over_floor': a / b, 'library_runs': lib, 'floor_runs': low}


# SR-GNN ######################################################################

def srgnn_paths(args, trainer_kwargs) -> Dict[str, Dict[str, Any]]:
    from pyg_recs.engine import Trainer
    from pyg_recs.engine.recipes import build_srgnn
    exp = build_srgnn(args.srgnn_dataset, args.srgnn_root,
                      hidden=args.hidden, batch_size=100,
                      eval_batch_size=500, device=args.device)
    model = exp.model
    trainer = Trainer(model, device=args.device, progress=False,
                      **trainer_kwargs)
    num_items, hidden = model.num_items, model.hidden_channels
    dev = trainer.device
    out = {}
    shapes = dict(batch_size=100, hidden=hidden, num_items=num_items)

    if 'srgnn-train' in args.paths:
        loader = _Take(exp.train_loader, args.steps)
        steps = len(loader)
        params, opt = _adam_like(model, dev)
        emb = params[[n for n, _ in model.named_parameters()].index(
            'item_emb.weight')]
        s = torch.randn(100, hidden, device=dev, requires_grad=True)
        y = torch.randint(num_items, (100, ), device=dev)

        def floor():
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(s @ emb.t(), y)
                loss.backward()
                opt.step()

        out['srgnn-train'] = dict(
            _measure(lambda: trainer.train_epoch(loader), floor,
                     args.repeats, dev), steps=steps, **shapes,
            floor_is='score matmul fwd+bwd, log-softmax+NLL fwd+bwd, '
                     'fused Adam over all parameters')
        out['srgnn-train']['profile'] = _profile(
            lambda: trainer.train_epoch(_Take(exp.train_loader, 20)))

    if 'srgnn-eval' in args.paths:
        loader = _Take(exp.test_loader, args.eval_batches)
        sizes = [int(b.y.numel()) for b in loader]
        emb = model.item_emb.weight.detach()
        queries = [torch.randn(n, hidden, device=dev) for n in sizes]

        @torch.no_grad()
        def floor():
            for q in queries:
                (q @ emb.t()).topk(20, dim=-1)

        out['srgnn-eval'] = dict(
            _measure(lambda: trainer.evaluate(loader), floor, args.repeats,
                     dev), batches=len(sizes), examples=sum(sizes),
            **dict(shapes, batch_size=500),
            floor_is='score matmul and top-20')
        out['srgnn-eval']['profile'] = _profile(
            lambda: trainer.evaluate(_Take(exp.test_loader, 4)))
    return out


# KTUP ########################################################################

def ktup_paths(args, trainer_kwargs) -> Dict[str, Dict[str, Any]]:
    from pyg_recs.engine import Trainer
    from pyg_recs.engine.recipes import build_ktup
    from pyg_recs.nn.kge.transh import orthogonal_penalty
    exp = build_ktup(args.ktup_dataset, args.ktup_root, hidden=args.hidden,
                     device=args.device)
    model = exp.model
    trainer = Trainer(model, device=args.device, progress=False,
                      **trainer_kwargs)
    dev = trainer.device
    out = {}
    names = [n for n, _ in model.named_parameters()]
    shapes = dict(num_users=model.num_users, num_items=model.num_items,
                  num_entities=model.kg.num_nodes,
                  num_relations=model.num_relations, hidden=args.hidden)

    if 'ktup-train' in args.paths:
        loader = _Take(exp.train_loader, args.steps)
        batches = [{k: v.to(dev) for k, v in b.items()} if isinstance(b, dict)
                   else b.to(dev) for b in loader]
        steps = len(batches)
        params, opt = _adam_like(model, dev)
        p = dict(zip(names, params))
        ent_of_item = model.item_entity.to(dev)
        margin, temp = model.margin, model.temperature
        ortho_w, norm_w = model.orthogonal_weight, model.norm_weight
        kg_w, p_norm = model.kg_weight, model.p_norm

        def project(x, w):
            return x - (x * w).sum(-1, keepdim=True) * w

        def rec_step(b):
            u = F.embedding(b.user_index, p['user_emb.weight'])
            index = torch.cat([b.pos_item_index, b.neg_item_index])
            ent = ent_of_item[index]
            i = (F.embedding(index, p['item_emb.weight']) +
                 F.embedding(ent.clamp(min=0), p['kg.node_emb.weight']) *
                 (ent >= 0).unsqueeze(-1))
            pref, rel = p['pref_emb.weight'], p['kg.rel_emb.weight']
            key = pref + rel
            normal = (F.normalize(p['pref_norm_emb.weight'], dim=-1) +
                      F.normalize(p['kg.rel_norm_emb.weight'], dim=-1))
            u2 = u.repeat(2, 1)
            alpha = torch.softmax((u2 @ key.t() + i @ key.t()) /
                                  (2 * temp), dim=-1)
            w = F.normalize(alpha @ normal, dim=-1)
            score = -(project(u2 - i, w) + alpha @ (key / 2)).norm(
                p=p_norm, dim=-1)
            pos, neg = score.chunk(2)
            loss = -F.logsigmoid(pos - neg).mean()
            wp = F.normalize(p['pref_norm_emb.weight'], dim=-1)
            return loss + ortho_w * orthogonal_penalty(pref, wp).sum()

        def kg_step(b):
            h, r, t = b.head_index, b.rel_type, b.tail_index
            n = h.numel() // 2
            rnd = torch.randint(model.kg.num_nodes, h.size(), device=dev)
            nh, nt = h.clone(), t.clone()
            nh[:n], nt[n:] = rnd[:n], rnd[n:]
            node = p['kg.node_emb.weight']
            ent = F.embedding(torch.cat([h, nh, t, nt]), node)
            head, tail = ent.chunk(2)
            r2 = torch.cat([r, r])
            rel = F.embedding(r2, p['kg.rel_emb.weight'])
            w = F.normalize(F.embedding(r2, p['kg.rel_norm_emb.weight']),
                            dim=-1)
            score = -(project(head, w) + rel - project(tail, w)).norm(
                p=p_norm, dim=-1)
            pos, neg = score.chunk(2)
            loss = F.relu(margin - pos + neg).mean()
            loss = loss + ortho_w * orthogonal_penalty(rel, w).sum() / (
                h.numel())
            loss = loss + norm_w * (F.relu(ent.pow(2).sum(-1) - 1).sum() +
                                    F.relu(rel.pow(2).sum(-1) - 1).sum()
                                    ) / h.numel()
            return kg_w * loss

        def floor():
            for b in batches:
                opt.zero_grad(set_to_none=True)
                loss = rec_step(b) if 'user_index' in b else kg_step(b)
                loss.backward()
                opt.step()

        out['ktup-train'] = dict(
            _measure(lambda: trainer.train_epoch(loader), floor,
                     args.repeats, dev), steps=steps,
            rec_batches=sum('user_index' in b for b in batches),
            batch_size=256, **shapes,
            floor_is='gathers + scoring arithmetic + loss fwd/bwd of each '
                     'batch, fused Adam over all parameters')
        out['ktup-train']['profile'] = _profile(
            lambda: trainer.train_epoch(_Take(exp.train_loader, 20)))

    if 'ktup-eval' in args.paths:
        from pyg_recs.metrics import top_k
        loader = _Take(exp.test_loader, args.eval_batches)
        batches = [b.to(dev) for b in loader]
        model.eval()
        with torch.no_grad():
            tables = model._closed_form_tables()
            items = model.item_representation()
        key, trans, normal, g_nn, g_tt, g_nt = tables
        key = key / (2 * model.temperature)

        @torch.no_grad()
        def floor_broadcast():
            # Any p: the [B, C, d] differences of every pair, over the same
            # item chunks as the library (one [B, all items, d] broadcast is
            # slower: it leaves the caches).
            from pyg_recs.nn.models.ktup import CHUNK_ELEMENTS
            _, trans_, normal_ = model._preference_tables()
            for b in batches:
                user = model.user_emb.weight[b.user_index]
                chunk = max(1, CHUNK_ELEMENTS // (user.size(0) * args.hidden))
                scores = []
                for item in items.split(chunk):
                    alpha = torch.softmax(
                        (user @ key.t()).unsqueeze(1) +
                        (item @ key.t()).unsqueeze(0), dim=-1)  # [B, C, R]
                    w = F.normalize(alpha @ normal_, dim=-1)  # [B, C, d]
                    diff = user.unsqueeze(1) - item.unsqueeze(0)
                    diff = diff - (diff * w).sum(-1, keepdim=True) * w + \
                        alpha @ trans_
                    scores.append(-diff.norm(p=p_norm, dim=-1))
                top_k(torch.cat(scores, dim=-1), 10, b.exclude_index)

        @torch.no_grad()
        def floor_l2():
            for b in batches:
                user = model.user_emb.weight[b.user_index]
                logits = (user @ key.t()).unsqueeze(1) + \
                    (items @ key.t()).unsqueeze(0)
                alpha = torch.softmax(logits, dim=-1)  # [B, C, R]
                dd = ((user * user).sum(-1, keepdim=True) +
                      (items * items).sum(-1) - 2 * user @ items.t())
                un, inn = user @ normal.t(), items @ normal.t()
                ut, it = user @ trans.t(), items @ trans.t()
                wd = (torch.bmm(alpha, un.unsqueeze(-1)).squeeze(-1) -
                      (alpha * inn).sum(-1))
                dt = (torch.bmm(alpha, ut.unsqueeze(-1)).squeeze(-1) -
                      (alpha * it).sum(-1))
                norm = ((alpha @ g_nn) * alpha).sum(-1).sqrt()
                tt = ((alpha @ g_tt) * alpha).sum(-1)
                wt = ((alpha @ g_nt) * alpha).sum(-1) / norm
                wd = wd / norm
                sq = dd - wd * wd + tt + 2 * dt - 2 * wd * wt
                top_k(-sq.clamp_min(0).sqrt(), 10, b.exclude_index)

        p_norm = model.p_norm
        l2 = p_norm == 2
        out['ktup-eval'] = dict(
            _measure(lambda: trainer.evaluate(loader),
                     floor_l2 if l2 else floor_broadcast, args.repeats,
                     dev), batches=len(batches), batch_size=256, **shapes,
            p_norm=p_norm,
            floor_is=('closed-form soft-attention L2 scores of all pairs'
                      if l2 else 'soft-attention scores of all pairs, '
                      '[B, C, d] per item chunk') + ', masking, top-10')
        out['ktup-eval']['profile'] = _profile(
            lambda: trainer.evaluate(_Take(exp.test_loader, 2)))
    return out


# Report ######################################################################

def to_markdown(report: Dict[str, Any]) -> str:
    lines = ['| path | library s | floor s | over floor | top operators |',
             '|---|---|---|---|---|']
    for name, r in report['paths'].items():
        ops = ', '.join(f"{o['op']} {100 * o['share']:.0f}%"
                        for o in r['profile'][:3])
        lines.append(f"| {name} | {r['library_seconds']:.3f} | "
                     f"{r['floor_seconds']:.3f} | {r['over_floor']:.2f} | "
                     f"{ops} |")
    return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
    from pyg_recs.cli import link_raw, positive_int, resolve_device
    from pyg_recs.engine.runner import versions
    from pyg_recs.io import atomic_json_dump, atomic_write

    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--paths', nargs='+', choices=PATHS,
                        default=list(PATHS))
    parser.add_argument('--srgnn-dataset', default='diginetica')
    parser.add_argument('--srgnn-root', default='datasets/diginetica')
    parser.add_argument('--srgnn-raw-from')
    parser.add_argument('--ktup-dataset', default='ml-100k-kg')
    parser.add_argument('--ktup-root', default='datasets/ml-100k-kg')
    parser.add_argument('--ktup-raw-from')
    parser.add_argument('--hidden', type=positive_int, default=100)
    parser.add_argument('--steps', type=positive_int, default=100,
                        help='training batches per timing')
    parser.add_argument('--eval-batches', type=positive_int, default=20,
                        help='evaluation batches per timing')
    parser.add_argument('--repeats', type=positive_int, default=3)
    parser.add_argument('--threads', type=positive_int)
    parser.add_argument('--device', default='auto')
    parser.add_argument('--out-dir', default=osp.join(HERE, 'results'))
    parser.add_argument('--tag', default=f'{datetime.date.today()}-cpu')
    args = parser.parse_args(argv)
    args.device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    for raw_from, root in ((args.srgnn_raw_from, args.srgnn_root),
                           (args.ktup_raw_from, args.ktup_root)):
        if raw_from:
            link_raw(raw_from, osp.join(root, 'raw'))
    torch.manual_seed(0)

    trainer_kwargs = dict(lr=1e-3, weight_decay=1e-5)
    paths: Dict[str, Any] = {}
    if any(p.startswith('srgnn') for p in args.paths):
        paths.update(srgnn_paths(args, trainer_kwargs))
    if any(p.startswith('ktup') for p in args.paths):
        paths.update(ktup_paths(args, dict(trainer_kwargs,
                                           weight_decay=0.0)))
    report = {
        'tag': args.tag,
        'device': str(args.device),
        'threads': torch.get_num_threads(),
        'repeats': args.repeats,
        'paths': paths,
        'versions': versions(),
        'command': ' '.join(['python', 'benchmarks/floor.py'] +
                            (argv if argv is not None else sys.argv[1:])),
    }
    os.makedirs(args.out_dir, exist_ok=True)
    base = osp.join(args.out_dir, f'{args.tag}-floor')
    atomic_json_dump(report, base + '.json')
    text = to_markdown(report)
    atomic_write(base + '.md', lambda f: f.write(text), mode='w')
    print(text)
    print(f'Wrote {base}.json and {base}.md')
    return 0


if __name__ == '__main__':
    sys.exit(main())
