import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from modgraph.metrics import ari, nmi


def test_nmi_ari_match_scikit_learn():
    rng = np.random.default_rng(0)
    for _ in range(100):
        a = rng.integers(0, rng.integers(1, 6), 40)
        b = rng.integers(0, rng.integers(1, 6), 40)
        assert nmi(a, b) == pytest.approx(normalized_mutual_info_score(a, b), abs=1e-9)
        assert ari(a, b) == pytest.approx(adjusted_rand_score(a, b), abs=1e-9)


def test_invariant_to_relabelling_and_size_mismatch_is_an_error():
    assert nmi([0, 0, 1, 2], [7, 7, 3, 9]) == 1.0 and ari([0, 0, 1, 2], [7, 7, 3, 9]) == 1.0
    with pytest.raises(ValueError, match="partitions differ in size: 2 and 3 labels"):
        nmi([0, 1], [0, 1, 1])
