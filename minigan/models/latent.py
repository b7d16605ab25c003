"""The prior p(z) of every latent-variable model here: z ~ N(0, I).

GAN, cGAN, DCGAN, WGAN, InfoGAN (its incompressible noise), the VAE and VAE-GAN
all draw z from the same standard normal, so it is written once and each model
file imports it (``gan.sample_latent``, ``vae.sample_latent``, ... are this function).
"""
import minigan as mg


def sample_latent(n, latent_dim, device="cpu"):
    """z ~ N(0, I), shaped (n, latent_dim)."""
    return mg.randn(n, latent_dim, device=device)
