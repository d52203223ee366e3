"""Generation metrics on sets with known answers; chunked distance matrices; the evaluate entry."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from pcgen.cli import main
from pcgen.errors import ConfigError, ShapeError
from pcgen.metrics import (coverage, evaluate_sets, jensen_shannon_divergence, minimum_matching_distance,
                           normalize_clouds, occupancy_jsd, one_nn_accuracy, pairwise_distances,
                           precision_recall)

K, N = 6, 32


def evaluate_main(args: list[str]) -> int:
    """``pcgen evaluate ARGS...`` in this process."""
    return main(["evaluate", *args])


def _random_sets(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(K, N, 3, generator=g) - 0.5


def _lattice_sets():
    """K lattice clouds (spacing 1), cloud k placed 10*k apart along x: far from each other."""
    ax = torch.arange(4.0)
    grid = torch.stack(torch.meshgrid(ax, ax, torch.arange(2.0), indexing="ij"), -1).reshape(-1, 3)
    return torch.stack([grid + torch.tensor([10.0 * k, 0, 0]) for k in range(K)])


def test_identical_sets():
    ref = _random_sets()
    r = evaluate_sets(ref.clone(), ref, emd_eps=1e-3)
    assert r["jsd"] == pytest.approx(0.0, abs=1e-12)
    for m in ("chamfer", "emd"):
        assert r[m]["mmd"] == pytest.approx(0.0, abs=1e-7)
        assert r[m]["cov"] == 1.0
        assert r[m]["1nna"] == 0.5  # tie rule: an exact copy in the other set scores 1/2
        assert r[m]["precision"] == 1.0 and r[m]["recall"] == 1.0


def test_disjoint_far_apart_sets():
    ref = _random_sets(1) * 0.5
    gen = _random_sets(2) * 0.5 + torch.tensor([100.0, 0, 0])
    r = evaluate_sets(gen, ref, normalize="none")
    assert r["jsd"] == pytest.approx(1.0)  # disjoint voxels: 1 bit
    for m in ("chamfer", "emd"):
        assert r[m]["1nna"] == 1.0
        assert r[m]["cov"] <= 2 / K
        assert r[m]["precision"] == 0.0 and r[m]["recall"] == 0.0


@pytest.mark.parametrize("emd_squared", [False, True])
def test_shifted_copy_mmd_is_the_shift(emd_squared):
    ref = _lattice_sets()
    t = torch.tensor([0.12, -0.09, 0.05])
    r = evaluate_sets(ref + t, ref, normalize="none", emd_eps=1e-6, emd_squared=emd_squared)
    t2 = float(t.pow(2).sum())
    assert r["chamfer"]["mmd"] == pytest.approx(2 * t2, rel=1e-5)  # both directions
    assert r["emd"]["mmd"] == pytest.approx(t2 if emd_squared else t2 ** 0.5, rel=1e-5)
    assert r["chamfer"]["cov"] == 1.0


def test_normalization_removes_placement():
    ref = _random_sets(3)
    moved = ref * 7.0 + torch.tensor([5.0, -2.0, 1.0])
    for mode in ("box", "sphere"):
        assert torch.allclose(normalize_clouds(moved, mode), normalize_clouds(ref, mode), atol=1e-5)
    box = normalize_clouds(moved, "box")
    assert box.abs().amax() == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        normalize_clouds(ref, "unit")


def test_jsd_known_values():
    p = torch.tensor([1.0, 1.0, 0.0, 0.0])
    assert jensen_shannon_divergence(p, p * 3) == pytest.approx(0.0)
    assert jensen_shannon_divergence(p, p.flip(0)) == pytest.approx(1.0)
    # half the mass shared: JSD = 1 - (entropy terms) = 0.5 bit here
    assert jensen_shannon_divergence(torch.tensor([1.0, 1, 0]), torch.tensor([0.0, 1, 1])) == pytest.approx(0.5)
    a = torch.full((2, 5, 3), -0.9)
    b = torch.full((2, 5, 3), 0.9)
    assert occupancy_jsd(a, b) == pytest.approx(1.0)
    assert occupancy_jsd(a, a.clone()) == pytest.approx(0.0)


@pytest.mark.parametrize("p, q, says", [
    ([0.0, 0, 0, 0], [1.0, 1, 1, 1], "histogram p must hold finite counts >= 0, not all zero"),  # was 0.0
    ([1.0, -1, 1, 1], [1.0, 1, 1, 1], "histogram p must hold"),
    ([1.0, 1, 1], [1.0, 1, 1, 1], r"one shape, got \(3,\) and \(4,\)"),
])
def test_jsd_of_histograms_it_cannot_compare_is_an_error(p, q, says):
    with pytest.raises(ValueError, match=says):
        jensen_shannon_divergence(torch.tensor(p), torch.tensor(q))


def test_precision_recall_wants_at_least_one_neighbour():
    d = torch.rand(4, 4)
    for k in (0, -1, 1.5):
        with pytest.raises(ValueError, match=f"k must be a whole number >= 1, got {k!r}"):
            precision_recall(d, d, d, k=k)  # k = 0 returned (0.0, 0.0)


def test_scores_on_small_matrices():
    d_gr = torch.tensor([[0.1, 5.0, 5.0], [0.2, 5.0, 5.0]], dtype=torch.float64)
    assert minimum_matching_distance(d_gr) == pytest.approx((0.1 + 5 + 5) / 3)
    assert coverage(d_gr) == pytest.approx(1 / 3)
    d_gg = torch.tensor([[0, 3.0], [3.0, 0]], dtype=torch.float64)
    d_rr = torch.tensor([[0, 4, 4], [4, 0, 1], [4, 1, 0]], dtype=torch.float64)
    # g0, g1: nearest is r0 (other set) -> wrong; r0: nearest g0 -> wrong; r1, r2: each other -> right
    assert one_nn_accuracy(d_gg, d_gr, d_rr) == pytest.approx(2 / 5)
    # equal same/other distances score 1/2
    tie = one_nn_accuracy(torch.tensor([[0, 1.0], [1.0, 0]]), torch.tensor([[1.0, 9], [9, 1.0]]),
                          torch.tensor([[0, 9.0], [9.0, 0]]))
    assert tie == pytest.approx((0.5 + 0.5 + 0 + 0) / 4)
    p, r = precision_recall(d_gg, d_gr, d_rr, k=1)
    assert p == 1.0  # both gens within r0's 1-NN radius (4)
    assert r == pytest.approx(1 / 3)  # only r0 within a gen's radius (3)


@pytest.mark.parametrize("metric", ["chamfer", "emd"])
def test_chunked_matrix_matches_unchunked(metric):
    a, b = _random_sets(4), _random_sets(5)[:4]
    full = pairwise_distances(a, b, metric, chunk=10_000)
    assert full.shape == (K, 4)
    assert torch.allclose(pairwise_distances(a, b, metric, chunk=3), full)
    sym = pairwise_distances(a, a, metric, chunk=5, symmetric=True)
    assert torch.allclose(sym, sym.T) and (sym.diagonal() == 0).all()
    assert torch.allclose(sym, pairwise_distances(a, a, metric, chunk=7), rtol=2e-2, atol=1e-7)


def test_evaluate_entry_writes_report(tmp_path):
    ref = _random_sets(6).numpy()
    gen_dir = tmp_path / "gen"
    gen_dir.mkdir()
    for i, c in enumerate(_random_sets(7).numpy()):
        np.save(gen_dir / f"{i:03d}.npy", np.concatenate([c, c[:4]]))  # 36 points each
    np.save(tmp_path / "ref.npy", ref)
    out = tmp_path / "r" / "report.json"
    rc = evaluate_main([f"generated={gen_dir}", f"reference={tmp_path / 'ref.npy'}", f"out={out}",
                        "num_points=32", "metrics=[chamfer,emd]", "chunk=16"])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["num_generated"] == K and report["num_points"] == 32
    assert 0 <= report["emd"]["1nna"] <= 1 and report["chamfer"]["mmd"] > 0
    assert set(report["emd"]) == {"mmd", "cov", "1nna", "precision", "recall"}


def test_evaluate_bad_inputs(tmp_path, capsys):
    out = tmp_path / "report.json"
    np.save(tmp_path / "ref.npy", _random_sets().numpy())
    np.save(tmp_path / "flat.npy", np.zeros((4, 3)))
    np.save(tmp_path / "big.npy", np.random.default_rng(0).random((K, N + 4, 3)))
    np.save(tmp_path / "huge.npy", np.full((K, N, 3), 1e300))
    spread = _random_sets().numpy().astype(np.float64)
    spread[:, 0] = 1e30
    spread[:, 1] = -1e30
    np.save(tmp_path / "spread.npy", spread)
    np.save(tmp_path / "text.npy", np.full((K, N, 3), "a"))
    cases = [
        ([f"generated={tmp_path / 'missing.npy'}", f"reference={tmp_path / 'ref.npy'}"], "missing.npy"),
        ([f"generated={tmp_path / 'flat.npy'}", f"reference={tmp_path / 'ref.npy'}"], "(K, N, 3)"),
        ([f"generated={tmp_path / 'ref.npy'}"], "reference"),
        ([f"generated={tmp_path / 'ref.npy'}", f"reference={tmp_path / 'ref.npy'}", "colour=red"], "colour"),
        ([f"generated={tmp_path / 'ref.npy'}", f"reference={tmp_path / 'ref.npy'}", "metrics=[f1]"], "metrics"),
        ([f"generated={tmp_path / 'big.npy'}", f"reference={tmp_path / 'ref.npy'}"],
         f"generated have {N + 4} points, reference {N}; set num_points="),
        # past float32 the check in float64 passed and the EMD auction hung or crashed the process
        ([f"generated={tmp_path / 'huge.npy'}", f"reference={tmp_path / 'ref.npy'}"],
         "huge.npy: coordinates beyond float32's range"),
        ([f"generated={tmp_path / 'spread.npy'}", f"reference={tmp_path / 'ref.npy'}", "normalize=none"],
         "spread.npy: its clouds span 2e+30 units: squared distances overflow"),
        ([f"generated={tmp_path / 'text.npy'}", f"reference={tmp_path / 'ref.npy'}"],
         "text.npy: holds <U1 values, not coordinates"),
        # a checkpoint generates its own clouds: generated= and a second reference were ignored
        ([f"generated={tmp_path / 'ref.npy'}", f"ckpt={tmp_path / 'x.ckpt'}", f"data={tmp_path}"],
         "drop generated="),
        ([f"ckpt={tmp_path / 'x.ckpt'}", f"data={tmp_path}", f"reference={tmp_path / 'ref.npy'}"],
         "not both"),
        ([f"generated={tmp_path / 'ref.npy'}", f"reference={tmp_path / 'ref.npy'}", f"data={tmp_path}"],
         "without a checkpoint give reference="),
    ]
    for args, needle in cases:
        assert evaluate_main(args + [f"out={out}"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("pcgen evaluate: error:") and needle in err and "\n" not in err
        assert not out.exists()


def test_module_entry_runs(tmp_path):
    np.save(tmp_path / "a.npy", _random_sets(8).numpy())
    proc = subprocess.run([sys.executable, "-m", "pcgen.cli", "evaluate", f"generated={tmp_path / 'a.npy'}",
                           f"reference={tmp_path / 'nope'}", f"out={tmp_path / 'o.json'}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "nope" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1e30])
def test_evaluate_sets_refuses_what_no_distance_can_hold(bad):
    """A NaN gave an MMD of NaN (not JSON), an inf a finite wrong MMD, and EMD killed the process."""
    gen, ref = _random_sets(), _random_sets(5)
    gen[1, 2, 0] = bad
    with pytest.raises(ShapeError, match="generated clouds (hold NaN|span)"):
        evaluate_sets(gen, ref, metrics=("chamfer",), normalize="none")


@pytest.mark.parametrize("setting, needle", [({"pr_k": 0}, "pr_k must be >= 1"),
                                             ({"pr_k": 2.5}, "pr_k must be an integer"),
                                             ({"jsd_resolution": 2.5}, "jsd_resolution must be an integer"),
                                             ({"chunk": 0}, "chunk must be >= 1"),
                                             ({"emd_squared": "yes"}, "emd_squared must be true or false")])
def test_evaluate_sets_checks_its_settings(setting, needle):
    """pr_k=0 reported precision and recall of zero; the CLI refused it, the library did not."""
    with pytest.raises(ConfigError, match=needle):
        evaluate_sets(_random_sets(), _random_sets(5), metrics=("chamfer",), **setting)


def test_occupancy_and_pairwise_distances_check_what_they_are_given():
    from pcgen.metrics import pairwise_distances
    from pcgen.metrics.jsd import occupancy

    c = torch.rand(2, 10, 3) * 2 - 1
    with pytest.raises(ConfigError, match="jsd resolution must be >= 1 and <= 256, got 1000000"):
        occupancy(c, 10**6)  # asked numpy for 8e18 bytes
    with pytest.raises(ConfigError, match="jsd resolution must be an integer, got 2.5"):
        occupancy(c, 2.5)
    with pytest.raises(ShapeError, match="NaN or infinite"):
        occupancy(torch.full((1, 2, 3), float("nan")))  # was counted in a voxel
    with pytest.raises(ShapeError, match=r"\(K, N, 3\)"):
        occupancy(torch.rand(2, 10, 2))
    with pytest.raises(ShapeError, match="symmetric distances need a to be b, got 4 and 5 clouds"):
        pairwise_distances(torch.rand(4, 8, 3), torch.rand(5, 8, 3), symmetric=True)  # was an IndexError
    with pytest.raises(ConfigError, match="chunk must be an integer, got 2.5"):
        pairwise_distances(c, c, chunk=2.5)


def test_sets_without_points_or_of_integers_are_named_errors():
    from pcgen.metrics import normalize_clouds

    with pytest.raises(ShapeError, match=r"generated clouds must be \(K >= 2, N >= 1, 3\), got \(4, 0, 3\)"):
        evaluate_sets(torch.rand(4, 0, 3), torch.rand(5, 0, 3))  # was an amin() IndexError
    assert normalize_clouds(torch.zeros(2, 0, 3)).shape == (2, 0, 3)
    with pytest.raises(ShapeError, match="floating-point"):
        normalize_clouds(torch.zeros(2, 5, 3, dtype=torch.int64), "sphere")  # was a torch mean() error
    with pytest.raises(ConfigError, match="normalize must be"):
        normalize_clouds(torch.zeros(2, 0, 3), "cube")

