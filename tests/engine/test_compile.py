import pytest
import torch
from torch_geometric.data import Batch, Data

from pyg_recs.data import session_to_graph
from pyg_recs.engine.trainer import _LossModule
from pyg_recs.nn.models import KTUP, SRGNN


def explain(module, batch):
    torch._dynamo.reset()
    out = torch._dynamo.explain(module)(batch)
    return out.graph_break_count, [str(r.reason) for r in out.break_reasons]


@pytest.mark.slow
def test_srgnn_training_step_has_no_graph_breaks():
    model = SRGNN(20, 16)
    batch = Batch.from_data_list([
        session_to_graph([1, 2, 3, 2, 4], 5),
        session_to_graph([6, 6], 1),
    ])
    assert explain(_LossModule(model), batch) == (0, [])


@pytest.mark.slow
@pytest.mark.parametrize('use_st_gumbel', [False, True])
def test_ktup_training_steps_have_no_graph_breaks(use_st_gumbel):
    model = KTUP(6, 8, 12, 3, hidden_channels=16,
                 item_entity=torch.arange(8), use_st_gumbel=use_st_gumbel)
    rec = Data(user_index=torch.tensor([0, 1, 2]),
               pos_item_index=torch.tensor([1, 2, 3]),
               neg_item_index=torch.tensor([4, 5, 6]))
    kg = Data(head_index=torch.tensor([0, 1]), rel_type=torch.tensor([0, 2]),
              tail_index=torch.tensor([3, 4]))
    assert explain(_LossModule(model), rec) == (0, [])
    assert explain(_LossModule(model), kg) == (0, [])


@pytest.mark.slow
def test_cli_compile_option(sample_root, tmp_path):
    from pyg_recs.cli import main
    assert main([
        'train', 'srgnn', '--dataset', 'srgnn-format', '--root', sample_root,
        '--epochs', '1', '--hidden', '16', '--compile', '--no-progress',
        '--out', str(tmp_path / 'run')
    ]) == 0
