"""PyTorch state-dict reader: masks from torch.nn.utils.prune or a mask tensor, weights_only refusal."""
import numpy as np
import pytest
import torch
from torch.nn.utils import prune

from modgraph.errors import FormatError
from modgraph.io import load, read_torch_state


def _mlp(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 4, bias=False),
                               torch.nn.ReLU(), torch.nn.Linear(4, 3))


def test_pruned_state_dict_matches_torch_and_keeps_zero_weights_of_the_mask(tmp_path):
    m = _mlp(0)
    prune.l1_unstructured(m[0], "weight", amount=0.5)
    prune.random_unstructured(m[4], "bias", amount=0.5)
    kept = m[0].weight_mask.nonzero()[0]
    with torch.no_grad():
        m[0].weight_orig[kept[0], kept[1]] = 0.0                  # a surviving weight that is exactly 0
    torch.save(m.state_dict(), tmp_path / "sd.pt")
    net = load(tmp_path / "sd.pt")
    assert net.source_format == "torch-state-dict" and net.widths == (6, 5, 4, 3)
    assert [l.activation for l in net.layers] == ["relu", "relu", "identity"]
    np.testing.assert_array_equal(net.layers[0].mask, m[0].weight_mask.numpy().astype(bool))
    assert net.layers[0].n_edges == 15 and net.layers[0].weight[int(kept[0]), int(kept[1])] == 0.0
    x = torch.randn(9, 6)
    np.testing.assert_allclose(net.forward(x.numpy()), m(x).detach().numpy(), atol=1e-6)


def test_mask_tensor_beside_weight_checkpoint_wrapper_and_given_activations(tmp_path):
    rng = np.random.default_rng(1)
    w1, w2 = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(2, 4)).astype(np.float32)
    mask = rng.random((4, 3)) < 0.5
    state = {"enc.weight": torch.from_numpy(w1), "enc.mask": torch.from_numpy(mask), "enc.bias": torch.zeros(4),
             "head.weight": torch.from_numpy(w2)}
    torch.save({"epoch": 7, "model_state_dict": state}, tmp_path / "ck.pth")
    net = read_torch_state(tmp_path / "ck.pth", activations=["tanh", "sigmoid"])
    np.testing.assert_array_equal(net.layers[0].mask, mask)
    x = rng.normal(size=(5, 3))
    np.testing.assert_allclose(net.forward(x), 1 / (1 + np.exp(-(np.tanh(x @ (w1 * mask).T) @ w2.T))), atol=1e-6)
    assert net.metadata["torch"]["layers"] == ["enc", "head"]
    with pytest.raises(ValueError, match=r"activations: expected 2 names from elu, gelu, identity, "):
        read_torch_state(tmp_path / "ck.pth", activations=["relu"])


def test_pickled_module_is_refused_by_weights_only_with_our_message(tmp_path):
    torch.save(_mlp(2), tmp_path / "whole.pt")                    # a whole nn.Module: pickled objects
    with pytest.raises(FormatError, match=r"whole\.pt: torch\.load\(weights_only=True\): expected a state dict of "
                       r"tensors \(pickled objects are refused, never unpickled\), found pickled Python objects "
                       r"\(a torch\.nn\.modules\.container\.Sequential\)"):
        load(tmp_path / "whole.pt")


def test_batchnorm_buffers_and_unchained_widths_are_refused(tmp_path):
    bn = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    torch.save(bn.state_dict(), tmp_path / "bn.pt")
    with pytest.raises(FormatError, match=r"state dict entry '1\.running_mean': expected only linear layers"):
        load(tmp_path / "bn.pt")
    torch.save({"a.weight": torch.ones(4, 3), "b.weight": torch.ones(2, 5)}, tmp_path / "gap.pt")
    with pytest.raises(FormatError, match=r"gap\.pt: state dict layer 'b': expected a weight with 4 inputs "
                       r"\(the width of layer 0\), found 5 inputs"):
        load(tmp_path / "gap.pt")
