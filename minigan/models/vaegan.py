r"""VAE-GAN (Larsen, Sønderby, Larochelle & Winther, 2016, "Autoencoding beyond
pixels using a learned similarity metric").

The idea: a VAE's samples are blurry because its reconstruction term compares
images pixel by pixel: a digit shifted by one pixel is "far" from itself, so the
decoder hedges and averages. A GAN's discriminator, on the other hand, learns
features in which such differences hardly matter and in which fakes stand out.
VAE-GAN joins the two models in one: the VAE's decoder *is* the GAN's generator,
and the reconstruction error is measured in the feature space of the
discriminator's l-th layer, Dis_l, instead of in pixels.

    Enc:  x -> q(z|x) = N(mu(x), diag sigma^2(x))          (the VAE encoder)
    Dec:  z -> x~ = Dec(z)                                  (VAE decoder = GAN generator)
    Dis:  x -> Dis(x) = P(x is real), through the features Dis_l(x)

The objective is the VAE's, with its likelihood moved to Dis_l, plus the GAN's:

    L = L_prior + L_llike^{Dis_l} + L_GAN,

    L_prior        = KL(q(z|x) || p(z)),  p(z) = N(0, I)   (closed form, as in the VAE)
    L_llike^{Dis_l} = -E_{q(z|x)}[log p(Dis_l(x) | z)],  p(Dis_l(x) | z) = N(Dis_l(x~), I)
                   = 1/2 ||Dis_l(x) - Dis_l(Dec(z))||^2 + const    (z ~ q(z|x), one sample)
    L_GAN          = -[log Dis(x) + log(1 - Dis(Dec(z))) + log(1 - Dis(Dec(z_p)))],
                     z ~ q(z|x),  z_p ~ p(z),

written here as the discriminator's binary cross-entropy (the paper writes the
bracket and reads Algorithm 1's updates with this sign). The discriminator sees
three kinds of image: real ones, reconstructions, and decoded prior samples; the
paper found that adding the prior samples (the ones the VAE is judged by) helps.

The three networks do not descend the same loss (Algorithm 1):

    theta_Enc <- theta_Enc - grad_Enc(L_prior + L_llike)        no GAN signal in the encoder
    theta_Dec <- theta_Dec - grad_Dec(gamma L_llike - L_GAN)    reconstruct, and fool Dis
    theta_Dis <- theta_Dis - grad_Dis(L_GAN)                    Dis never minimizes L_llike

Dis would otherwise make its features useless for comparison (collapsing
Dis_l makes L_llike zero), and the encoder is kept out of the game. gamma weighs
reconstructing (content) against fooling the discriminator (style).
``train_step`` computes exactly these three gradients on one forward pass, with
two backward passes, ``mg.grad(L_prior + L_llike, Enc and Dec)`` and
``mg.grad(L_GAN, Dec and Dis)`` (L_prior does not reach Dec, L_GAN's gradient is
simply not asked of Enc), and gives each optimizer its own network's part.

Keeping the game in balance (the authors' code, andersbll/autoencoding_beyond_pixels,
``model/aegan.py``; not in the paper): Dis easily wins, and then L_GAN's gradient
into Dec vanishes (minimax) while Dis_l drifts to whatever separates real from
fake. With Dis's costs on real and on decoded images,

    real = -log Dis(x),   fake = -1/2 [log(1 - Dis(x~)) + log(1 - Dis(x_p))]   (batch means),

each near log 2 = 0.69 when Dis cannot tell, and an equilibrium of 0.68 with a
margin of 0.35 (``EQUILIBRIUM``, ``MARGIN``; the values their ``aegan.train``
passes, the trainer's own default margin being 0.4):

    Dis's update is skipped           if real or fake < equilibrium - margin   (Dis wins)
    Dec's GAN term -L_GAN is skipped  if real or fake > equilibrium + margin   (Dis loses)
    (if both would be skipped, neither is)

A skipped update leaves the network and its optimizer's state as they were; the
encoder is always updated. ``train_step`` returns ``dis_skipped`` and
``dec_gan_skipped`` (0 or 1) with the losses, so a run's log counts them.
On digits Dis wins most of the time, and the rule is what lets longer training
help instead of hurt (docs/vaegan.md has the runs with and without it).

The paper's networks (its architecture table, 64x64 CelebA), followed layer by layer:

    Enc:  [5x5 conv stride 2, BN, ReLU] x 3 (64, 128, 256), FC 2048 + BN + ReLU, FC to mu and log sigma^2
    Dec:  FC 8*8*256 + BN + ReLU, [5x5 transposed conv stride 2, BN, ReLU] x 3 (256, 128, 32),
          5x5 conv to the image channels, tanh
    Dis:  5x5 conv 32 + ReLU, [5x5 conv stride 2, BN, ReLU] x 3 (128, 256, 256),
          FC 512 + BN + ReLU, FC 1, sigmoid

with Dis_l the output of Dis's last convolution (the authors' code: layer 9,
before its batch norm). RMSprop with a learning rate of 3e-4 and minibatches of 64,
for every network (the authors' code starts at 0.02 per batch of 64 on losses summed
over the batch: 3.1e-4 on batch means, as here). Batch norm runs in training mode over one batch that holds all
the images each network sees (the authors' code does the same): Dis judges
[x, x~, x_p] together and Dec decodes [z, z_p] together, so the features of x and
x~ are normalized with the same statistics.

Deviations from the paper, and why:
  * Scaled down for 16x16 digits (or 28x28 Fashion-MNIST) on a CPU: two stride-2
    stages instead of three, and narrower layers (``widths`` and ``hidden``
    arguments: Enc 32, 64 / FC 256; Dec FC 4*4*32, 32, 16; Dis 16 / 32, 64 / FC
    128), a 16-dimensional z (the paper: 128 for CelebA).
  * gamma: the paper gives no number; the authors' CelebA script weighs the
    decoder's gradient 1e-5 : (1 - 1e-5) between reconstruction and GAN, for a
    Dis_l of 16384 features. Our Dis_l has 1024; gamma = 1e-3 was chosen on
    16x16 digits by the classifier-feature FD of prior samples, against 1e-2 and
    1e-4 (docs/vaegan.md).
  * The decoder's GAN term is Algorithm 1's -L_GAN (minimax). The non-saturating
    alternative (``loss_kind``) did worse on digits (docs/vaegan.md): with Dis
    winning early, L_llike in Dis's features still drives Dec.
  * When Dis loses by the margin, the authors skip Dec's whole update; at their
    weighting (1e-5 reconstruction : 1 GAN) that update is nearly all GAN term.
    Here only Dec's GAN term is dropped and Dec keeps descending gamma L_llike,
    which at our gamma is not negligible, so the decoder stays matched to the
    encoder, which keeps learning. It is rare on digits.
  * Dis outputs a logit and L_GAN is computed from logits (stable, as ``gan.py``);
    the authors add eps = 1e-3 inside the logarithms instead. The real and fake
    terms are weighted equally (the authors' code weighs real images 0.66).
  * The default initialization of minigan's layers (PyTorch's), not the authors'.
"""
import minigan as mg
from minigan import nn
from minigan import functional as F

from .gan import generator_loss
from .latent import sample_latent
from .vae import reparameterize

GAMMA = 1e-3  # weight of L_llike against L_GAN in the decoder's update (see the docstring)
EQUILIBRIUM = 0.68  # Dis's cost at which the game is balanced, about log 2 (the authors' code)
MARGIN = 0.35  # how far Dis may win or lose before an update is skipped (their aegan.train)


def _conv_block(c_in, c_out, transposed=False):
    """5x5, stride 2 (down or up by a factor 2), then batch norm and ReLU; no bias
    before batch norm, which subtracts the batch mean (and any bias with it)."""
    if transposed:
        conv = nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=1, bias=False)
    else:
        conv = nn.Conv2d(c_in, c_out, 5, stride=2, padding=2, bias=False)
    return [conv, nn.BatchNorm2d(c_out), nn.ReLU()]


def _check_size(name, image_shape, n_stages):
    size = image_shape[-1]
    if image_shape[-2] != size or size % 2 ** n_stages:
        raise ValueError(f"{name}: {n_stages} stride-2 stages need square images with a side divisible by "
                         f"{2 ** n_stages}, got image_shape {tuple(image_shape)}")
    return size // 2 ** n_stages


class Encoder(nn.Module):
    """Enc = q(z|x): image -> (mu, log sigma^2), each (N, latent_dim)."""

    def __init__(self, image_shape=(1, 16, 16), latent_dim=16, widths=(32, 64), hidden=256):
        super().__init__()
        side = _check_size("Encoder", image_shape, len(widths))
        layers, channels = [], image_shape[0]
        for w in widths:
            layers += _conv_block(channels, w)
            channels = w
        self.features = nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * side * side, hidden, bias=False),
                                      nn.BatchNorm1d(hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)

    def forward(self, x):
        h = self.features(x)
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """Dec = the GAN's generator: z (N, latent_dim) -> image (N, *image_shape) in [-1, 1]."""

    def __init__(self, latent_dim=16, image_shape=(1, 16, 16), widths=(32, 16)):
        super().__init__()
        side = _check_size("Decoder", image_shape, len(widths))
        self.project = nn.Sequential(nn.Linear(latent_dim, widths[0] * side * side, bias=False),
                                     nn.BatchNorm1d(widths[0] * side * side), nn.ReLU(),
                                     nn.Unflatten(1, (widths[0], side, side)))
        layers, channels = [], widths[0]
        for w in widths:
            layers += _conv_block(channels, w, transposed=True)
            channels = w
        self.upsample = nn.Sequential(*layers, nn.Conv2d(channels, image_shape[0], 5, padding=2), nn.Tanh())
        self.latent_dim = latent_dim

    def forward(self, z):
        return self.upsample(self.project(z))


class Discriminator(nn.Module):
    """Dis: image -> (logit (N,), Dis_l features (N, F)); Dis(x) = sigmoid(logit).

    Dis_l is the output of the last convolution, before its batch norm (as the
    authors' code), flattened: the space in which reconstructions are compared.
    """

    def __init__(self, image_shape=(1, 16, 16), widths=(16, 32, 64), hidden=128):
        super().__init__()
        side = _check_size("Discriminator", image_shape, len(widths) - 1)
        layers, channels = [nn.Conv2d(image_shape[0], widths[0], 5, padding=2), nn.ReLU()], widths[0]
        for w in widths[1:]:
            layers += _conv_block(channels, w)
            channels = w
        self.to_dis_l = nn.Sequential(*layers[:-2])  # up to the last convolution: Dis_l
        self.head = nn.Sequential(*layers[-2:], nn.Flatten(), nn.Linear(channels * side * side, hidden, bias=False),
                                  nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        dis_l = self.to_dis_l(x)
        return self.head(dis_l).flatten(), dis_l.flatten(1)


def encode(encoder, x):
    """z ~ q(z|x) by the reparameterization trick, with mu and log sigma^2: (z, mu, logvar)."""
    mu, logvar = encoder(x)
    return reparameterize(mu, logvar), mu, logvar


# ---------------------------------------------------------------- the three loss terms


def prior_loss(mu, logvar):
    """L_prior = KL(q(z|x) || N(0, I)), summed over z's dimensions, batch mean."""
    return F.gaussian_kl(mu, logvar)


def feature_reconstruction_loss(recon_features, real_features):
    """L_llike^{Dis_l} = -log N(Dis_l(x); Dis_l(x~), I) + const
    = 1/2 sum_j (Dis_l(x)_j - Dis_l(x~)_j)^2, batch mean."""
    return 0.5 * ((real_features - recon_features) ** 2).sum(1).mean()


def pixel_reconstruction_loss(recon, real):
    """The plain VAE's -log N(x; x~, I) + const = 1/2 ||x - x~||^2 per image, batch mean:
    the element-wise metric that VAE-GAN replaces (for the pixel-VAE comparison)."""
    return 0.5 * ((real - recon) ** 2).flatten(1).sum(1).mean()


def discriminator_costs(real_logits, recon_logits, prior_logits):
    """Dis's cross-entropies on each kind of image, batch means, from logits:
    (-log Dis(x), -log(1 - Dis(x~)), -log(1 - Dis(x_p)))."""
    return (F.binary_cross_entropy_with_logits(real_logits, mg.ones_like(real_logits)),
            F.binary_cross_entropy_with_logits(recon_logits, mg.zeros_like(recon_logits)),
            F.binary_cross_entropy_with_logits(prior_logits, mg.zeros_like(prior_logits)))


def gan_loss(real_logits, recon_logits, prior_logits):
    """L_GAN = -[log Dis(x) + log(1 - Dis(x~)) + log(1 - Dis(x_p))], batch means, from logits;
    returned with its three terms, Dis's cost on each kind of image (the equilibrium rule reads them)."""
    real, recon, prior = discriminator_costs(real_logits, recon_logits, prior_logits)
    return real + recon + prior, real, recon, prior


def equilibrium_updates(real_cost, fake_cost, equilibrium=EQUILIBRIUM, margin=MARGIN):
    """The authors' balance rule on Dis's costs (floats; ``fake_cost`` averaged over x~
    and x_p): returns (update Dis?, give Dec its GAN term?)."""
    update_dis = not (real_cost < equilibrium - margin or fake_cost < equilibrium - margin)
    dec_gan = not (real_cost > equilibrium + margin or fake_cost > equilibrium + margin)
    if not (update_dis or dec_gan):  # one cost far below, the other far above: no one is ahead
        return True, True
    return update_dis, dec_gan


# ---------------------------------------------------------------- one step of Algorithm 1


def _apply(optimizer, params, grads):
    optimizer.zero_grad()
    for p, g in zip(params, grads):
        p.grad = g
    optimizer.step()


def train_step(encoder, decoder, discriminator, opt_enc, opt_dec, opt_dis, real, gamma=GAMMA, loss_kind="minimax",
               margin=MARGIN, equilibrium=EQUILIBRIUM):
    """One iteration of Algorithm 1 on a minibatch ``real``; returns the losses as floats,
    and whether the equilibrium rule skipped Dis's update or Dec's GAN term (1.0 if so).

    ``loss_kind="minimax"`` is Algorithm 1: Dec descends gamma L_llike - L_GAN.
    ``"non_saturating"`` replaces -L_GAN in Dec's loss by -[log Dis(x~) + log Dis(x_p)]
    (the GAN paper's remedy for a discriminator that wins early; ``gan.py``), at the
    cost of a third backward pass. ``margin=None`` turns the equilibrium rule off
    (every network is updated every step). Noise is drawn as eps (for z ~ q(z|x)),
    then z_p ~ p(z).
    """
    if loss_kind not in ("minimax", "non_saturating"):
        raise ValueError(f"vaegan.train_step: loss_kind must be 'minimax' or 'non_saturating', got {loss_kind!r}")
    if margin is not None and not margin >= 0:
        raise ValueError(f"vaegan.train_step: margin must be None (no equilibrium rule) or >= 0, got {margin!r}")
    n = real.shape[0]
    z, mu, logvar = encode(encoder, real)
    z_p = sample_latent(n, decoder.latent_dim, real.device)
    decoded = decoder(mg.cat([z, z_p]))                         # [x~, x_p]
    logits, dis_l = discriminator(mg.cat([real, decoded]))      # Dis and Dis_l of [x, x~, x_p]

    l_prior = prior_loss(mu, logvar)
    l_llike = feature_reconstruction_loss(dis_l[n:2 * n], dis_l[:n])
    l_gan, real_cost, recon_cost, prior_cost = gan_loss(logits[:n], logits[n:2 * n], logits[2 * n:])
    update_dis = dec_gan = True
    if margin is not None:
        update_dis, dec_gan = equilibrium_updates(real_cost.item(), (recon_cost.item() + prior_cost.item()) / 2,
                                                  equilibrium, margin)

    enc, dec, dis = (list(m.parameters()) for m in (encoder, decoder, discriminator))
    if loss_kind == "minimax":
        # L_prior does not depend on Dec: this gives Enc grad(L_prior + L_llike) and Dec grad(L_llike)
        vae_grads = mg.grad(l_prior + l_llike, enc + dec, retain_graph=True)
        enc_grads, dec_grads = vae_grads[:len(enc)], [gamma * g for g in vae_grads[len(enc):]]
        gan_grads = mg.grad(l_gan, (dec if dec_gan else []) + (dis if update_dis else []))
        if dec_gan:
            dec_grads = [a - b for a, b in zip(dec_grads, gan_grads[:len(dec)])]
        dis_grads = gan_grads[len(dec):] if dec_gan else gan_grads
    else:
        fool = generator_loss(logits[n:2 * n]) + generator_loss(logits[2 * n:])
        enc_grads = mg.grad(l_prior + l_llike, enc, retain_graph=True)
        dec_grads = mg.grad(gamma * l_llike + fool if dec_gan else gamma * l_llike, dec, retain_graph=True)
        dis_grads = mg.grad(l_gan, dis) if update_dis else []
    _apply(opt_enc, enc, enc_grads)
    _apply(opt_dec, dec, dec_grads)
    if update_dis:
        _apply(opt_dis, dis, dis_grads)
    return {"prior": l_prior.item(), "llike": l_llike.item(), "gan": l_gan.item(),
            "dis_skipped": float(not update_dis), "dec_gan_skipped": float(not dec_gan)}


def pixel_vae_train_step(encoder, decoder, optimizer, real):
    """The same encoder and decoder trained as a plain VAE with a Gaussian pixel
    likelihood, L_prior + 1/2 ||x - x~||^2: the baseline the paper compares against."""
    z, mu, logvar = encode(encoder, real)
    l_prior = prior_loss(mu, logvar)
    l_pixel = pixel_reconstruction_loss(decoder(z), real)
    optimizer.zero_grad()
    (l_prior + l_pixel).backward()
    optimizer.step()
    return {"prior": l_prior.item(), "pixel": l_pixel.item()}
