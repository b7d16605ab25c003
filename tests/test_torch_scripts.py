"""Scripts written for PyTorch run unchanged with ``import minigan as torch``.

Each script below is plain PyTorch, in the style of the PyTorch tutorials and examples (the
DCGAN tutorial's ``weights_init`` and training step, a WGAN-GP critic step, the VAE example's
loss, sampling under ``no_grad`` in ``eval()`` mode). It takes the framework as its argument,
so the very same source runs once with torch and once with minigan, from the same inputs and
the same initial weights (torch's, copied through ``state_dict`` arrays); losses, gradients and
the parameters after one optimizer step must agree.
"""
import numpy as np
import pytest
import torch

import minigan as mg

LOSS = dict(rtol=1e-5, atol=1e-6)
ARRAY = dict(rtol=1e-4, atol=2e-6)


def _arrays(state):
    return {k: v.detach().cpu().numpy().copy() for k, v in state.items()}


def _load(torch, module, state):
    if state is not None:
        module.load_state_dict({k: torch.tensor(v) for k, v in state.items()})


def _grads(module):
    return {n: p.grad.detach().cpu().numpy().copy() for n, p in module.named_parameters() if p.grad is not None}


# ---------------------------------------------------------------- the scripts


def dcgan_tutorial_step(torch, images, noise, state=None, nz=8, ngf=4, ndf=4, nc=1):
    """The PyTorch DCGAN tutorial's networks (16x16 here), weights_init and one training step."""
    nn = torch.nn
    device = torch.device("cpu")

    class Generator(nn.Module):
        def __init__(self):
            super(Generator, self).__init__()
            self.main = nn.Sequential(
                nn.ConvTranspose2d(nz, ngf * 2, 4, 1, 0, bias=False),
                nn.BatchNorm2d(ngf * 2),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
                nn.Tanh()
            )

        def forward(self, input):
            return self.main(input)

    class Discriminator(nn.Module):
        def __init__(self):
            super(Discriminator, self).__init__()
            self.main = nn.Sequential(
                nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ndf * 2),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 2, 1, 4, 1, 0, bias=False),
                nn.Sigmoid()
            )

        def forward(self, input):
            return self.main(input)

    def weights_init(m):
        classname = m.__class__.__name__
        if classname.find('Conv') != -1:
            nn.init.normal_(m.weight.data, 0.0, 0.02)
        elif classname.find('BatchNorm') != -1:
            nn.init.normal_(m.weight.data, 1.0, 0.02)
            nn.init.constant_(m.bias.data, 0)

    netG = Generator().to(device)
    netG.apply(weights_init)
    netD = Discriminator().to(device)
    netD.apply(weights_init)
    after_init = {"G": _arrays(netG.state_dict()), "D": _arrays(netD.state_dict())}
    _load(torch, netG, None if state is None else state["G"])
    _load(torch, netD, None if state is None else state["D"])
    initial = {"G": _arrays(netG.state_dict()), "D": _arrays(netD.state_dict())}

    criterion = nn.BCELoss()
    real_label = 1.
    fake_label = 0.
    optimizerD = torch.optim.Adam(netD.parameters(), lr=0.0002, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=0.0002, betas=(0.5, 0.999))

    # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
    netD.zero_grad()
    real_cpu = torch.from_numpy(images).to(device)
    b_size = real_cpu.size(0)
    label = torch.full((b_size,), real_label, dtype=torch.float, device=device)
    output = netD(real_cpu).view(-1)
    errD_real = criterion(output, label)
    errD_real.backward()
    D_x = output.mean().item()

    fake = netG(torch.from_numpy(noise).to(device))
    label.fill_(fake_label)
    output = netD(fake.detach()).view(-1)
    errD_fake = criterion(output, label)
    errD_fake.backward()
    D_G_z1 = output.mean().item()
    errD = errD_real + errD_fake
    optimizerD.step()
    grads_D = _grads(netD)

    # (2) Update G network: maximize log(D(G(z)))
    netG.zero_grad()
    label.fill_(real_label)
    output = netD(fake).view(-1)
    errG = criterion(output, label)
    errG.backward()
    D_G_z2 = output.mean().item()
    optimizerG.step()

    losses = {"errD": errD.item(), "errG": errG.item(), "D_x": D_x, "D_G_z1": D_G_z1, "D_G_z2": D_G_z2}
    return {"after_init": after_init, "initial": initial, "losses": losses,
            "grads": {"D": grads_D, "G": _grads(netG)},
            "params": {"G": _arrays(netG.state_dict()), "D": _arrays(netD.state_dict())}}


def wgan_gp_critic_step(torch, real, z, alpha, state=None, lambda_gp=10):
    """One critic update of WGAN-GP: the penalty differentiates a gradient (create_graph=True)."""
    nn = torch.nn
    generator = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    critic = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 16), nn.LeakyReLU(0.2),
                           nn.Linear(16, 1))
    _load(torch, generator, None if state is None else state["G"])
    _load(torch, critic, None if state is None else state["D"])
    initial = {"G": _arrays(generator.state_dict()), "D": _arrays(critic.state_dict())}
    optimizer = torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.0, 0.9))

    real = torch.from_numpy(real)
    fake = generator(torch.from_numpy(z)).detach()
    alpha = torch.from_numpy(alpha)
    interpolates = (alpha * real + ((1 - alpha) * fake)).requires_grad_(True)
    d_interpolates = critic(interpolates)
    gradients = torch.autograd.grad(outputs=d_interpolates, inputs=interpolates,
                                    grad_outputs=torch.ones_like(d_interpolates),
                                    create_graph=True, retain_graph=True, only_inputs=True)[0]
    gradients = gradients.view(gradients.size(0), -1)
    gradient_penalty = ((gradients.norm(2, dim=1) - 1) ** 2).mean()
    loss = -torch.mean(critic(real)) + torch.mean(critic(fake)) + lambda_gp * gradient_penalty

    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"initial": initial, "losses": {"loss": loss.item(), "gp": gradient_penalty.item()},
            "grads": {"D": _grads(critic)}, "params": {"D": _arrays(critic.state_dict())}}


def vae_step(torch, x, eps, state=None):
    """The VAE example's model and loss (reconstruction + KL), one step; eps is given."""
    nn = torch.nn
    F = torch.nn.functional

    class VAE(nn.Module):
        def __init__(self):
            super(VAE, self).__init__()
            self.fc1 = nn.Linear(16, 12)
            self.fc21 = nn.Linear(12, 3)
            self.fc22 = nn.Linear(12, 3)
            self.fc3 = nn.Linear(3, 12)
            self.fc4 = nn.Linear(12, 16)

        def encode(self, x):
            h1 = F.relu(self.fc1(x))
            return self.fc21(h1), self.fc22(h1)

        def reparameterize(self, mu, logvar, eps):
            std = torch.exp(0.5 * logvar)
            return mu + eps * std

        def decode(self, z):
            h3 = F.relu(self.fc3(z))
            return torch.sigmoid(self.fc4(h3))

        def forward(self, x, eps):
            mu, logvar = self.encode(x.view(-1, 16))
            z = self.reparameterize(mu, logvar, eps)
            return self.decode(z), mu, logvar

    def loss_function(recon_x, x, mu, logvar):
        BCE = F.binary_cross_entropy(recon_x, x.view(-1, 16), reduction='sum')
        KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return BCE + KLD

    model = VAE()
    _load(torch, model, None if state is None else state["VAE"])
    initial = {"VAE": _arrays(model.state_dict())}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    data = torch.from_numpy(x)
    optimizer.zero_grad()
    recon_batch, mu, logvar = model(data, torch.from_numpy(eps))
    loss = loss_function(recon_batch, data, mu, logvar)
    loss.backward()
    train_loss = loss.item()
    optimizer.step()
    return {"initial": initial, "losses": {"loss": train_loss / len(data)},
            "grads": {"VAE": _grads(model)}, "params": {"VAE": _arrays(model.state_dict())}}


def sample_in_eval_mode(torch, z, state=None):
    """After a training forward moved the running statistics, sample with ``eval()`` under ``no_grad``."""
    nn = torch.nn
    generator = nn.Sequential(nn.Linear(4, 24), nn.BatchNorm1d(24), nn.ReLU(), nn.Linear(24, 12), nn.Tanh())
    _load(torch, generator, None if state is None else state["G"])
    initial = {"G": _arrays(generator.state_dict())}
    torch.manual_seed(0)
    generator(torch.from_numpy(z))  # training mode: the batch's statistics, running ones updated
    generator.eval()
    with torch.no_grad():
        samples = generator(torch.from_numpy(z)).cpu()
    images = samples.view(-1, 3, 2, 2).permute(0, 2, 3, 1).contiguous().view(samples.size(0), -1)
    blank = samples.new_zeros(samples.size(0), 2)
    grid = torch.cat([images, blank], dim=1)
    assert not samples.requires_grad and images.is_contiguous()
    return {"initial": initial, "losses": {"mean": grid.mean().item()},
            "grads": {}, "params": {"G": _arrays(generator.state_dict()), "grid": {"x": grid.numpy()}}}


# ---------------------------------------------------------------- running each twice


def _inputs(name):
    rng = np.random.default_rng(0)
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    if name == "dcgan":
        return dict(images=np.tanh(f32(6, 1, 16, 16)), noise=f32(6, 8, 1, 1))
    if name == "wgan_gp":
        return dict(real=f32(8, 2), z=f32(8, 4), alpha=rng.uniform(size=(8, 1)).astype(np.float32))
    if name == "vae":
        return dict(x=rng.uniform(size=(5, 1, 4, 4)).astype(np.float32), eps=f32(5, 3))
    return dict(z=f32(7, 4))


SCRIPTS = {"dcgan": dcgan_tutorial_step, "wgan_gp": wgan_gp_critic_step, "vae": vae_step,
           "sampling": sample_in_eval_mode}


def _assert_same_arrays(got, expected, what):
    assert got.keys() == expected.keys(), what
    for name in expected:
        for key, value in expected[name].items():
            np.testing.assert_allclose(got[name][key], value, **ARRAY, err_msg=f"{what} {name}.{key}")


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_same_script_gives_torchs_losses_gradients_and_step(name):
    script, inputs = SCRIPTS[name], _inputs(name)
    torch.manual_seed(0)
    expected = script(torch, **inputs)
    got = script(mg, **inputs, state=expected["initial"])
    _assert_same_arrays(got["initial"], expected["initial"], "initial")
    assert got["losses"].keys() == expected["losses"].keys()
    for key, value in expected["losses"].items():
        np.testing.assert_allclose(got["losses"][key], value, **LOSS, err_msg=key)
    _assert_same_arrays(got["grads"], expected["grads"], "gradient")
    _assert_same_arrays(got["params"], expected["params"], "after the step")


def test_weights_init_through_data_sets_the_dcgan_papers_initialization():
    """nn.init.normal_(m.weight.data, 0, 0.02) and constant_(m.bias.data, 0) change the parameters."""
    for framework in (torch, mg):
        framework.manual_seed(0)
        after_init = dcgan_tutorial_step(framework, **_inputs("dcgan"))["after_init"]
        for net in after_init.values():
            for key, value in net.items():
                if key.endswith("bias"):
                    assert (value == 0).all(), (framework.__name__, key)
                elif key.endswith("weight") and value.ndim == 4:  # N(0, 0.02): far below the default init
                    assert abs(value.mean()) < 0.01 and 0.012 < value.std() < 0.028, (framework.__name__, key)
                elif key.endswith("weight"):  # batch norm scale: N(1, 0.02)
                    assert abs(value - 1).max() < 0.1, (framework.__name__, key)


# ---------------------------------------------------------------- everyday idioms, one by one


def _data_is_the_same_memory_outside_the_graph(torch):
    p = torch.nn.Parameter(torch.ones(2, 3))
    d = p.data
    d.mul_(3)
    (p * p).sum().backward()  # p's change through .data is not one autograd sees
    return [d.requires_grad, d.is_leaf, d.grad_fn is None, p.detach().numpy(), p.grad.numpy()]


def _data_setter_replaces_the_values(torch):
    p = torch.nn.Parameter(torch.zeros(3))
    p.data = torch.arange(3.0)
    return [p.requires_grad, p.detach().numpy()]


def _contiguous_after_permute(torch):
    x = torch.arange(6.0).reshape(2, 3)
    y = x.permute(1, 0)
    z = y.contiguous()
    return [x.is_contiguous(), y.is_contiguous(), z.is_contiguous(), x.contiguous() is x,
            z.view(-1).numpy(), z.size(0), z.size()[1]]


def _new_tensors_take_dtype_and_device(torch):
    x = torch.ones(2, dtype=torch.float64)
    made = [x.new_zeros(3), x.new_ones((2, 2)), x.new_full((2,), 7.0), x.new_tensor([1.0, 2.0]),
            torch.zeros_like(x), torch.full_like(x, 2.0)]
    return [str(t.dtype).replace("torch.", "") for t in made] + [t.numpy() for t in made]


def _zero_grad_set_to_none(torch):
    layer = torch.nn.Linear(2, 1)
    layer(torch.ones(1, 2)).sum().backward()
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    opt.zero_grad(set_to_none=False)
    zeroed = [p.grad.numpy().copy() for p in layer.parameters()]
    opt.zero_grad(set_to_none=True)
    return zeroed + [all(p.grad is None for p in layer.parameters())]


def _init_constant_through_data(torch):
    layer = torch.nn.Linear(3, 2)
    torch.nn.init.constant_(layer.weight.data, 0.5)
    layer.bias.data.fill_(0)
    layer.weight.data.add_(1).div_(3)
    return [layer.weight.detach().numpy(), layer.bias.detach().numpy()]


def _manual_sgd_and_summed_losses(torch):
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]))
        layer.bias.zero_()
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    loss = 0
    for scale in (1.0, 2.0):
        loss += (layer(x) * scale).pow(2).mean()  # a new node: the name is rebound
    loss.backward()
    weight = layer.weight
    with torch.no_grad():
        for p in layer.parameters():
            p -= 0.1 * p.grad  # in place: the layer's own parameters move
    return [loss.item(), layer.weight.detach().numpy(), weight is layer.weight, layer.bias.detach().numpy()]


IDIOMS = [_manual_sgd_and_summed_losses, _data_is_the_same_memory_outside_the_graph, _data_setter_replaces_the_values, _contiguous_after_permute,
          _new_tensors_take_dtype_and_device, _zero_grad_set_to_none, _init_constant_through_data]


@pytest.mark.parametrize("idiom", IDIOMS, ids=lambda f: f.__name__.strip("_"))
def test_an_everyday_idiom_gives_torchs_result(idiom):
    expected, got = idiom(torch), idiom(mg)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        if isinstance(e, np.ndarray):
            np.testing.assert_array_equal(g, e)
        else:
            assert g == e
