"""Run RecBole's own SRGNN or KTUP on pre-split data and report JSON.

This is the RecBole "peer" of the pyg_recs benchmark harness. It runs in
its own virtual environment (see ``setup_recbole.sh``), never in the main
one, and imports nothing from ``pyg_recs``::

    $VENV/bin/python benchmarks/peers/recbole_runner.py \\
        --model SRGNN --data-dir /tmp/digi --dataset diginetica \\
        --epochs 1 --device cpu --out /tmp/recbole-srgnn.json

The data are RecBole atomic benchmark files split by the harness (see
``README.md`` beside this file). Every RecBole filter is off, so the data
are used as given. The training loop is driven here, epoch by epoch,
through RecBole's ``Trainer._train_epoch`` / ``_valid_epoch`` /
``evaluate``, so that each training epoch, each validation and the
full-ranking test evaluation are timed separately.

All of RecBole's side output (log file, checkpoint dir, tensorboard dir)
goes to a temporary working directory that is deleted at the end
(``--keep-workdir`` keeps it).
"""

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import warnings

SESSION_HEADER = ('session_id:token', 'item_id_list:token_seq',
                  'item_id:token')
KG_INTER_FIELDS = ('user_id:token', 'item_id:token')
KG_HEADER = ('head_id:token', 'relation_id:token', 'tail_id:token')
LINK_HEADER = ('item_id:token', 'entity_id:token')
SPLITS = ('train', 'valid', 'test')
# Internal dataset token: RecBole special-cases some dataset names (e.g.
# 'ml-100k' is read from its bundled copy and has its own yaml), so the
# given files are linked under this neutral name instead.
TOKEN = 'peerdata'
METRICS = ['Recall', 'MRR', 'NDCG', 'Hit', 'Precision']
TOPK = [10, 20]
# Defaults per model: SRGNN follows the SR-GNN reference settings,
# KTUP follows RecBole's own defaults (properties/model/KTUP.yaml).
MODEL_DEFAULTS = {
    'SRGNN': {'hidden': 100, 'lr': 1e-3, 'l2': 1e-5, 'batch_size': 100,
              'eval_batch_size': 4096},
    'KTUP': {'hidden': 64, 'lr': 1e-3, 'l2': 0.0, 'batch_size': 2048,
             'eval_batch_size': 40960},
}

#: The session models: SRGNN from RecBole itself, its successors from
#: RecBole-GNN (https://github.com/RUCAIBox/RecBole-GNN, not on PyPI:
#: ``setup_recbole.sh --with-gnn SRC`` installs it into RecBole's venv).
SESSION_MODELS = ('SRGNN', 'NISER', 'GCSAN', 'TAGNN')
RECBOLE_GNN_MODELS = ('NISER', 'GCSAN', 'TAGNN')
for _name in RECBOLE_GNN_MODELS:
    MODEL_DEFAULTS[_name] = dict(MODEL_DEFAULTS['SRGNN'])

# Behaviour of RecBole's implementation worth knowing when comparing.
MODEL_NOTES = {
    'SRGNN': [
        'item tokens of all three files are remapped jointly (id 0 = pad), '
        'so items seen only in valid/test are ranking candidates too',
        'full ranking over all n_items, no history masking (sequential)',
        'no learning-rate decay unless --lr-decay-step is given',
        'session graphs are built per session in numpy inside forward()',
    ],
    **{name: ['RecBole-GNN implementation, with its own config defaults '
              'for the model\'s own settings',
              'full ranking over all n_items, no history masking']
       for name in RECBOLE_GNN_MODELS},
    'KTUP': [
        'full ranking scores every (user, item) pair through predict(), '
        'which applies straight-through Gumbel noise also at evaluation, '
        'so two evaluations of one model differ (runs are seeded)',
        'test ranking masks the user\'s train and valid items',
        'KGTrainer alternates whole epochs: train_rec_step epochs of the '
        'recommendation loss, then train_kg_step epochs of the KG loss',
        'linked items get entity ids equal to their item ids; unlinked '
        'items use entity-embedding rows that no KG triple touches',
    ],
}


def parse_args(argv=None):
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description='Run RecBole SRGNN/KTUP on pre-split atomic files.')
    p.add_argument('--model', required=True, choices=sorted(MODEL_DEFAULTS))
    p.add_argument('--data-dir', required=True,
                   help='folder holding NAME.{train,valid,test}.inter '
                        '(+ NAME.kg, NAME.link for KTUP)')
    p.add_argument('--dataset', required=True, help='file prefix NAME')
    p.add_argument('--epochs', type=int, default=1)
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--out', required=True, help='JSON file to write')
    p.add_argument('--batch-size', type=int, help='train_batch_size')
    p.add_argument('--eval-batch-size', type=int,
                   help='eval_batch_size (SRGNN: sessions per batch; KTUP: '
                        'users x items scored per batch)')
    p.add_argument('--hidden', type=int, help='embedding_size')
    p.add_argument('--lr', type=float, help='learning_rate (Adam)')
    p.add_argument('--l2', type=float, help='weight_decay (Adam)')
    p.add_argument('--step', type=int, default=1, help='SRGNN GNN steps')
    p.add_argument('--lr-decay-step', type=int, default=0,
                   help='multiply lr by --lr-decay-gamma every N epochs '
                        '(SR-GNN reference: 3 and 0.1); 0 = RecBole '
                        'default, no decay')
    p.add_argument('--lr-decay-gamma', type=float, default=0.1)
    p.add_argument('--train-rec-step', type=int,
                   help='KTUP: epochs of rec training per cycle (RecBole '
                        'default 5)')
    p.add_argument('--train-kg-step', type=int,
                   help='KTUP: epochs of KG training per cycle (RecBole '
                        'default 5)')
    p.add_argument('--keep-anomaly-detection', action='store_true',
                   help='leave torch autograd anomaly detection on, as '
                        'stock RecBole 1.2.1 does (much slower backward)')
    p.add_argument('--no-valid', action='store_true',
                   help='skip the per-epoch validation')
    p.add_argument('--select', metavar='METRIC',
                   help="test the epoch with the best validation METRIC "
                        "(our names, e.g. 'Recall@10' or 'HR@20'), with "
                        "early stopping after --patience epochs without "
                        "improvement; default: test the last epoch")
    p.add_argument('--patience', type=int, default=10,
                   help='with --select: epochs without improvement before '
                        'stopping (0: never stop early)')
    p.add_argument('--seed', type=int, default=2020)
    p.add_argument('--threads', type=int,
                   help='torch.set_num_threads (default: torch default)')
    p.add_argument('--quiet', action='store_true',
                   help='RecBole log level WARNING instead of INFO')
    p.add_argument('--keep-workdir', action='store_true',
                   help='keep the temp dir with RecBole logs')
    args = p.parse_args(argv)
    if args.select and args.no_valid:
        p.error('--select needs the per-epoch validation (drop --no-valid)')
    for key, value in MODEL_DEFAULTS[args.model].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def read_header(path):
    """Return the header fields of an atomic file."""
    with open(path, encoding='utf-8') as f:
        return tuple(f.readline().rstrip('\r\n').split('\t'))


def require_columns(path, needed, exact=False):
    """Check that an atomic file has the needed typed header fields."""
    header = read_header(path)
    ok = header == tuple(needed) if exact else set(needed) <= set(header)
    if not ok:
        raise SystemExit(f'{path}: header {header} should '
                         f'{"be" if exact else "contain"} {tuple(needed)}')
    return header


def column_values(path, field):
    """Return the set of values of one column of an atomic file."""
    header = read_header(path)
    idx = header.index(field)
    values = set()
    with open(path, encoding='utf-8') as f:
        f.readline()
        for line in f:
            parts = line.rstrip('\r\n').split('\t')
            if len(parts) > idx:
                values.add(parts[idx])
    return values


def write_clean_link(src, dst, items, entities):
    """Copy a .link file keeping only 1:1 links RecBole can use.

    RecBole drops unusable links only in its filtering step, which it skips
    for benchmark files; its item/entity id merge then goes wrong if a link
    names an item that is in no .inter file, an entity that is in no KG
    triple, or repeats an item or an entity. Such rows are dropped here.
    Returns (rows kept, rows dropped).
    """
    kept = dropped = 0
    seen_items, seen_entities = set(), set()
    with open(src, encoding='utf-8') as fi, \
            open(dst, 'w', encoding='utf-8') as fo:
        header = fi.readline().rstrip('\r\n').split('\t')
        i_idx = header.index('item_id:token')
        e_idx = header.index('entity_id:token')
        fo.write('item_id:token\tentity_id:token\n')
        for line in fi:
            parts = line.rstrip('\r\n').split('\t')
            if len(parts) <= max(i_idx, e_idx):
                continue
            item, ent = parts[i_idx], parts[e_idx]
            if (item in items and ent in entities
                    and item not in seen_items
                    and ent not in seen_entities):
                seen_items.add(item)
                seen_entities.add(ent)
                fo.write(f'{item}\t{ent}\n')
                kept += 1
            else:
                dropped += 1
    return kept, dropped


def stage_data(args, workdir):
    """Link the given files into ``workdir/data/TOKEN`` for RecBole.

    Returns (data_path for RecBole, dict of staging notes).
    """
    src = os.path.abspath(args.data_dir)
    dst = os.path.join(workdir, 'data', TOKEN)
    os.makedirs(dst)
    notes = {}
    inter_paths = []
    for split in SPLITS:
        path = os.path.join(src, f'{args.dataset}.{split}.inter')
        if not os.path.isfile(path):
            raise SystemExit(f'missing input file {path}')
        if args.model in SESSION_MODELS:
            require_columns(path, SESSION_HEADER, exact=True)
        else:
            require_columns(path, KG_INTER_FIELDS)
        os.symlink(path, os.path.join(dst, f'{TOKEN}.{split}.inter'))
        inter_paths.append(path)
    if args.model == 'KTUP':
        kg = os.path.join(src, f'{args.dataset}.kg')
        link = os.path.join(src, f'{args.dataset}.link')
        for path in (kg, link):
            if not os.path.isfile(path):
                raise SystemExit(f'missing input file {path}')
        require_columns(kg, KG_HEADER)
        require_columns(link, LINK_HEADER)
        os.symlink(kg, os.path.join(dst, f'{TOKEN}.kg'))
        items = set()
        for path in inter_paths:
            items |= column_values(path, 'item_id:token')
        entities = (column_values(kg, 'head_id:token')
                    | column_values(kg, 'tail_id:token'))
        kept, dropped = write_clean_link(
            link, os.path.join(dst, f'{TOKEN}.link'), items, entities)
        notes['link_rows_kept'] = kept
        notes['link_rows_dropped'] = dropped
    return os.path.join(workdir, 'data'), notes


def recbole_config_dict(args, data_path, workdir):
    """Build the RecBole config dict (data used as given, no filters)."""
    cfg = {
        # environment: every side output into the temp working dir
        'data_path': data_path,
        'checkpoint_dir': os.path.join(workdir, 'saved'),
        # RecBole writes gpu_id into CUDA_VISIBLE_DEVICES: keep the
        # caller's choice of GPU.
        'gpu_id': (os.environ.get('CUDA_VISIBLE_DEVICES') or '0'
                   if args.device == 'cuda' else ''),
        'use_gpu': args.device == 'cuda',
        'worker': 0,
        'seed': args.seed,
        'reproducibility': True,
        'state': 'WARNING' if args.quiet else 'INFO',
        'show_progress': False,
        'save_dataset': False,
        'save_dataloaders': False,
        'log_wandb': False,
        # training
        'epochs': args.epochs,
        'train_batch_size': args.batch_size,
        'learner': 'adam',
        'learning_rate': args.lr,
        'weight_decay': args.l2,
        'embedding_size': args.hidden,
        # RecBole-GNN's GCSAN sizes its layers by hidden_size (64 in its
        # yaml) and its feed-forward by inner_size (256): both follow
        # --hidden, as pyg_recs' GC-SAN (one block, one head) does.
        **({'hidden_size': args.hidden, 'inner_size': args.hidden}
           if args.model == 'GCSAN' else {}),
        'clip_grad_norm': None,
        # evaluation
        'eval_batch_size': args.eval_batch_size,
        'metrics': METRICS,
        'topk': TOPK,
        'valid_metric': 'MRR@20',
        'metric_decimal_place': 6,
        # data: pre-split files, no filtering of any kind
        'benchmark_filename': list(SPLITS),
        'field_separator': '\t',
        'seq_separator': ' ',
        'rm_dup_inter': None,
        'val_interval': None,
        'filter_inter_by_user_or_item': False,
        'user_inter_num_interval': '[0,inf)',
        'item_inter_num_interval': '[0,inf)',
        'unused_col': None,
        'additional_feat_suffix': None,
    }
    if args.model in SESSION_MODELS:
        cfg.update({
            'USER_ID_FIELD': 'session_id',
            'ITEM_ID_FIELD': 'item_id',
            'TIME_FIELD': None,
            'load_col': {'inter': ['session_id', 'item_id_list',
                                   'item_id']},
            'alias_of_item_id': ['item_id_list'],
            'step': args.step,
            'loss_type': 'CE',
            'train_neg_sample_args': None,
            # SequentialDataset.build() insists on order TO; with
            # benchmark files the split itself is not used.
            'eval_args': {'split': {'LS': 'valid_and_test'},
                          'order': 'TO', 'group_by': None,
                          'mode': 'full'},
        })
    else:
        cfg.update({
            'USER_ID_FIELD': 'user_id',
            'ITEM_ID_FIELD': 'item_id',
            'load_col': {'inter': ['user_id', 'item_id'],
                         'kg': ['head_id', 'relation_id', 'tail_id'],
                         'link': ['item_id', 'entity_id']},
            'entity_kg_num_interval': '[0,inf)',
            'relation_kg_num_interval': '[0,inf)',
            'kg_reverse_r': False,
            'train_neg_sample_args': {'distribution': 'uniform',
                                      'sample_num': 1, 'alpha': 1.0,
                                      'dynamic': False,
                                      'candidate_num': 0},
            'eval_args': {'split': {'RS': [0.7, 0.1, 0.2]},
                          'order': 'RO', 'group_by': 'user',
                          'mode': 'full'},
        })
        if args.train_rec_step is not None:
            cfg['train_rec_step'] = args.train_rec_step
        if args.train_kg_step is not None:
            cfg['train_kg_step'] = args.train_kg_step
    return cfg


class NullWriter:
    """Stand-in for tensorboard's SummaryWriter that writes nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def sync(device):
    """Wait for queued CUDA work so that wall times are complete."""
    if device == 'cuda':
        import torch
        torch.cuda.synchronize()


def peak_rss_mb():
    """Peak resident set size of this process in MiB (Linux: KiB)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == 'darwin':
        rss /= 1024
    return rss / 1024


def map_metrics(raw, model):
    """Rename RecBole metric keys ('hit@20') to ours ('HR@20')."""
    names = {'recall': 'Recall', 'mrr': 'MRR', 'ndcg': 'NDCG',
             'hit': 'HR' if model in SESSION_MODELS else 'Hit',
             'precision': 'Precision'}
    out = {}
    for key, value in raw.items():
        name, _, k = key.partition('@')
        out[f'{names.get(name, name)}@{k}'] = float(value)
    return out


def loss_record(total, n_batches):
    """Split RecBole's per-epoch loss (sum over batches) into fields."""
    parts = list(total) if isinstance(total, tuple) else [total]
    parts = [float(p) for p in parts]
    return {'sum': sum(parts), 'mean': sum(parts) / max(n_batches, 1),
            'parts_sum': parts}


def ktup_phase(config, epoch):
    """Which task KGTrainer trains in an epoch: 'rs', 'kg' or 'rskg'."""
    rec, kg = config['train_rec_step'], config['train_kg_step']
    if rec is None or kg is None:
        return 'rskg'
    return 'rs' if epoch % (rec + kg) < rec else 'kg'


def versions():
    """Versions of the libraries in this environment."""
    import numpy
    import pandas
    import recbole
    import scipy
    import torch
    return {'recbole': recbole.__version__, 'torch': torch.__version__,
            'numpy': numpy.__version__, 'pandas': pandas.__version__,
            'scipy': scipy.__version__,
            'python': platform.python_version()}


def jsonable(value):
    """Turn config values (enums, devices, numpy scalars) into JSON."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, 'item'):
        return value.item()
    return str(value)


def _per_phase_eval_mode(gnn_utils) -> None:
    """Let RecBole-GNN (written for RecBole 1.1.1) read RecBole 1.2's
    evaluation mode.

    RecBole 1.2 stores ``eval_args['mode']`` per phase
    (``{'valid': 'full', 'test': 'full'}``); RecBole-GNN compares the whole
    value with ``'full'`` and so, on 1.2, builds negative-sampling loaders
    that the 1.2 trainer cannot evaluate. The runner evaluates both phases
    with one mode, which this passes on as the plain string.
    """
    pick = gnn_utils._get_customized_dataloader

    def customized_dataloader(config, phase):
        mode = config['eval_args']['mode']
        if isinstance(mode, dict):
            modes = set(mode.values())
            if len(modes) != 1:
                raise SystemExit(f'RecBole-GNN evaluates every phase with '
                                 f'one mode (got {mode})')
            config['eval_args']['mode'] = modes.pop()
            try:
                return pick(config, phase)
            finally:
                config['eval_args']['mode'] = mode
        return pick(config, phase)

    gnn_utils._get_customized_dataloader = customized_dataloader


def run(args, workdir):
    """Load data, train epoch by epoch, evaluate; return the result dict."""
    t_start = time.perf_counter()
    data_path, notes = stage_data(args, workdir)
    os.chdir(workdir)  # RecBole writes ./log and ./log_tensorboard

    import torch
    import recbole.trainer.trainer as trainer_module
    from recbole.utils import init_logger, init_seed
    if args.model in RECBOLE_GNN_MODELS:
        # RecBole-GNN's entry points (as its run_recbole_gnn.py uses them).
        try:
            import recbole_gnn.utils as gnn_utils
            from recbole_gnn.config import Config
            from recbole_gnn.utils import (create_dataset, data_preparation,
                                           get_model, get_trainer)
        except ImportError as error:
            raise SystemExit(
                f'{args.model} needs RecBole-GNN, which does not import in '
                f'this environment ({sys.executable}: {error}); set it up '
                f'with benchmarks/peers/setup_recbole.sh --with-gnn SRC')
        _per_phase_eval_mode(gnn_utils)
    else:
        from recbole.config import Config
        from recbole.data import create_dataset, data_preparation
        from recbole.utils import get_model, get_trainer

    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda but torch sees no GPU')
    if args.threads:
        torch.set_num_threads(args.threads)
    trainer_module.get_tensorboard = lambda logger: NullWriter()

    # Config also reads '--key=value' options from sys.argv: hide ours.
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        config = Config(model=args.model, dataset=TOKEN,
                        config_dict=recbole_config_dict(args, data_path,
                                                        workdir))
    finally:
        sys.argv = argv
    init_seed(config['seed'], config['reproducibility'])
    init_logger(config)

    t_data = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    data_seconds = time.perf_counter() - t_data

    init_seed(config['seed'] + config['local_rank'],
              config['reproducibility'])
    model = get_model(config['model'])(config, train_data._dataset)
    model = model.to(config['device'])
    # Importing recbole.model.sequential_recommender (get_model does, for
    # every model) runs sine.py, which calls
    # torch.autograd.set_detect_anomaly(True) at import time: a debug
    # mode that NaN-checks every gradient in backward. Off unless asked.
    anomaly_set_by_recbole = torch.is_anomaly_enabled()
    if not args.keep_anomaly_detection:
        torch.autograd.set_detect_anomaly(False)
    trainer = get_trainer(config['MODEL_TYPE'], config['model'])(config,
                                                                 model)
    scheduler = None
    if args.lr_decay_step > 0:
        scheduler = torch.optim.lr_scheduler.StepLR(
            trainer.optimizer, step_size=args.lr_decay_step,
            gamma=args.lr_decay_gamma)
    if args.device == 'cuda':
        torch.cuda.reset_peak_memory_stats()

    epoch_times, losses, phases = [], [], []
    valid_metrics, valid_seconds = [], []
    best_value, best_epoch, best_state = None, 0, None
    for epoch in range(args.epochs):
        if args.model == 'KTUP':
            phases.append(ktup_phase(config, epoch))
        sync(args.device)
        t0 = time.perf_counter()
        total = trainer._train_epoch(train_data, epoch)
        sync(args.device)
        epoch_times.append(time.perf_counter() - t0)
        # len() after the epoch: KTUP's loader length depends on its mode
        losses.append(loss_record(total, len(train_data)))
        if scheduler is not None:
            scheduler.step()
        if not args.no_valid:
            t0 = time.perf_counter()
            _, result = trainer._valid_epoch(valid_data)
            sync(args.device)
            valid_seconds.append(time.perf_counter() - t0)
            valid_metrics.append(map_metrics(result, args.model))
        print(f'epoch {epoch}: {epoch_times[-1]:.2f}s '
              f'loss {losses[-1]["mean"]:.4f}'
              + (f' valid MRR@20 {valid_metrics[-1]["MRR@20"]:.4f}'
                 if valid_metrics and 'MRR@20' in valid_metrics[-1]
                 else ''), file=sys.stderr)
        if args.select:
            if args.select not in valid_metrics[-1]:
                raise SystemExit(f"--select {args.select}: validation "
                                 f"gives {sorted(valid_metrics[-1])}")
            value = valid_metrics[-1][args.select]
            if best_value is None or value > best_value:
                best_value, best_epoch = value, epoch + 1
                best_state = {k: v.detach().cpu().clone()
                              for k, v in model.state_dict().items()}
            elif args.patience > 0 and \
                    epoch + 1 - best_epoch >= args.patience:
                break
    if best_state is not None:  # The validation-selected model:
        model.load_state_dict(best_state)

    sync(args.device)
    t0 = time.perf_counter()
    raw = trainer.evaluate(test_data, load_best_model=False)
    sync(args.device)
    eval_seconds = time.perf_counter() - t0

    raw = {k: float(v) for k, v in raw.items()}
    n_items = dataset.item_num - 1  # id 0 is RecBole's padding token
    data_info = {
        'n_train': len(train_data._dataset),
        'n_valid': len(valid_data._dataset),
        'n_test': len(test_data._dataset),
        'n_items': n_items,
    }
    key = 'n_sessions' if args.model in SESSION_MODELS else 'n_users'
    data_info[key] = dataset.user_num - 1
    if args.model == 'KTUP':
        data_info.update({
            'n_entities': dataset.entity_num - 1,
            'n_relations': dataset.relation_num - 1,
            'n_kg_triples': len(dataset.kg_feat),
            'n_eval_users_test': len(test_data.uid_list),
        })
    data_info.update(notes)
    hyper = {
        'epochs': args.epochs, 'batch_size': args.batch_size,
        'eval_batch_size': args.eval_batch_size, 'hidden': args.hidden,
        'lr': args.lr, 'l2': args.l2, 'seed': args.seed,
        'lr_decay_step': args.lr_decay_step,
        'lr_decay_gamma': args.lr_decay_gamma if args.lr_decay_step
        else None,
        'optimizer': 'adam',
    }
    if args.model in SESSION_MODELS:
        hyper.update({'step': config['step'], 'loss_type': 'CE',
                      'neg_sampling': None})
    else:
        hyper.update({key: config[key] for key in (
            'train_rec_step', 'train_kg_step', 'use_st_gumbel', 'L1_flag',
            'margin', 'kg_weight', 'align_weight')})
        hyper['neg_sampling'] = 'uniform, 1 per positive (BPR)'
    result = {
        'library': 'recbole',
        'versions': versions(),
        'model': args.model,
        'dataset': args.dataset,
        'data_dir': os.path.abspath(args.data_dir),
        'device': args.device,
        'torch_threads': torch.get_num_threads(),
        'hyperparameters': hyper,
        'recbole_config': {key: jsonable(config[key]) for key in (
            'train_batch_size', 'eval_batch_size', 'learning_rate',
            'weight_decay', 'embedding_size', 'train_neg_sample_args',
            'eval_args', 'metrics', 'topk', 'MODEL_TYPE',
            'MODEL_INPUT_TYPE', 'benchmark_filename', 'repeatable')},
        'autograd_anomaly_detection': {
            'enabled_by_recbole_import': anomaly_set_by_recbole,
            'used': torch.is_anomaly_enabled()},
        'notes': MODEL_NOTES[args.model],
        'n_parameters': sum(p.numel() for p in model.parameters()),
        'data': data_info,
        'data_seconds': data_seconds,
        'epoch_times': epoch_times,
        'train_losses': [rec['mean'] for rec in losses],
        'train_loss_sums': [rec['sum'] for rec in losses],
        'train_loss_parts': [rec['parts_sum'] for rec in losses],
        'valid_metrics': valid_metrics,
        'valid_seconds': valid_seconds,
        'eval_seconds': eval_seconds,
        'test_metrics': map_metrics(raw, args.model),
        'raw_metrics': raw,
        'peak_rss_mb': peak_rss_mb(),
        'cuda_max_memory_allocated_mb': (
            torch.cuda.max_memory_allocated() / 2 ** 20
            if args.device == 'cuda' else None),
        'total_seconds': time.perf_counter() - t_start,
    }
    if phases:
        result['epoch_phases'] = phases
    result['selection'] = 'valid' if args.select else 'last_epoch'
    result['epochs_trained'] = len(epoch_times)
    if args.select:
        result['select_metric'] = args.select
        result['best_epoch'] = best_epoch
    return result


def main(argv=None):
    """Entry point: run and write the JSON report."""
    args = parse_args(argv)
    out = os.path.abspath(args.out)
    warnings.filterwarnings('ignore', category=FutureWarning)
    warnings.filterwarnings('ignore', category=UserWarning)
    workdir = tempfile.mkdtemp(prefix='recbole-peer-')
    cwd = os.getcwd()
    try:
        result = run(args, workdir)
    finally:
        os.chdir(cwd)
        if args.keep_workdir:
            print(f'RecBole workdir kept: {workdir}', file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
    with open(out, 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=2)
        f.write('\n')
    print(json.dumps({k: result[k] for k in (
        'model', 'dataset', 'epoch_times', 'eval_seconds', 'test_metrics')}))


if __name__ == '__main__':
    main()
