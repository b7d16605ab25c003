"""Neural style transfer: Gatys et al. 2016 (optimize the pixels) or AdaIN (Huang & Belongie 2017).

    python examples/style_transfer.py                                   # Gatys, astronaut in Legacy/qube1's style
    python examples/style_transfer.py --method adain                    # train AdaIN's decoder, then one forward pass
    python examples/style_transfer.py --content chelsea --style brick   # any photo, texture or GIMP pattern by name
    python examples/style_transfer.py --style-weight 1e3                # Gatys' alpha/beta = 1e-3 (see below)
    python examples/style_transfer.py --features vgg19.safetensors --width 1   # ImageNet weights, where one has them

Pictures by name (``--content``, ``--style``): the photographs of scikit-learn and
scikit-image (china, flower, astronaut, chelsea, coffee, rocket), scikit-image's
textures (brick, grass, gravel, greyscale) and GIMP's patterns (Stone/amethyst,
Wood/walnut, ...: ``minigan.data.colour``). Each is cut to a --size square: a photo
or texture shrunk to that shorter side and its centre cut; a smaller pattern tiled
(GIMP's patterns are seamless).

Gatys: --steps Adam steps on the pixels (lr --lr, from --init), loss alpha L_content
+ beta L_style as in ``minigan.models.style_transfer``. AdaIN: --steps Adam steps of
the decoder on batches of --batch-size random --crop crops, content crops from the
training split of the photos and GIMP's patterns, style crops from the training split
of the patterns and scikit-image's textures (``minigan.data.colour``: astronaut,
coffee, flower and every 5th pattern, Legacy/qube1 among them, are held out, so the
default pair is one the decoder never saw); then the content-style trade-off
alpha = 0, 0.25, 0.5, 0.75, 1 (the paper's Fig. 9).

The feature network (--features): "random" (torchvision's initialization, seeded by
--seed) or a safetensors file with torchvision's VGG-19 keys; --width narrows it
(1/4 by default, so a run takes minutes on a CPU).

Writes into --out: samples.png (content | style | result; for AdaIN content | style |
alpha = 0 ... 1), result.png, samples.npz (content, style, result and for AdaIN the
alpha sweep), losses.png, metrics.json and checkpoint.safetensors (the pixels, or the
decoder). metrics.json holds the method's own content and style losses (Gatys': L_content
at relu4_2 and L_style of the Gram matrices; AdaIN's: relu4_1 features' squared error
and the mean/std loss) of the result against the content and the style image, and as
baselines those of the content image itself and of the style image itself, measured
with the network the method used and again with a "judge": a VGG-19 of another seed
that the method never saw, with Gatys' losses. ``content_kept`` = 1 - content loss
of the result / of the style image (1: as close to the content as the content image,
0: no closer than the style image); ``style_taken`` = 1 - style loss of the result /
of the content image.

Defaults and why: Gatys' beta = 1e5 (alpha/beta = 1e-5, the paper's 1e-3 or 1e-4 one
flag away). Random features' Gram matrices are small (L_style of the content image
against the style 3e-3), and Adam, which scales each pixel's step by its own gradient's
size, still moves the pixels towards the style at the paper's ratio, but only part of
the way in 300 steps (style loss down 85%, colours barely change); at 1e5 it falls 98%
and the picture takes the style's colours while the layout stays (docs/style_transfer.md).
AdaIN's lambda = 10 is the paper's; at this scale (300 to 1000 steps of a narrow decoder
on random features) the decoder does not learn to draw the content, see the doc.
"""
import argparse
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data.colour import TEST_PHOTOS, load_gimp_patterns, load_photos, random_crops, split_pictures
from minigan.data.images import TEXTURES, load_image
from minigan.data.transforms import center_crop, resize
from minigan.models import style_transfer as st
from minigan.models.features import GATYS_CONTENT_LAYER, GATYS_STYLE_LAYERS
from minigan.utils import save_image, save_npz
from minigan.utils.experiment import Experiment, RunSettings, example_parser, nonnegative_float, positive_float, \
    positive_int

METHODS = ("gatys", "adain")
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
STEPS = {"gatys": 300, "adain": 300}
LR = {"gatys": 0.02, "adain": 1e-3}
STYLE_WEIGHT = {"gatys": 1e5, "adain": st.ADAIN_LAMBDA}
TEXTURE_SIDE = 128  # scikit-image's 512x512 textures shrunk 4x, to the photos' scale
JUDGE_SEED = 1000  # the judge network's seed is --seed + this


def picture_names():
    photos = sorted(load_photos())
    patterns = sorted(name[:-len(".pat")] for name in load_gimp_patterns())
    return photos, list(TEXTURES), patterns


def load_picture(name, size):
    """(1, 3, size, size) float32 in [-1, 1]: a photo, a scikit-image texture or a GIMP pattern by name."""
    photos = load_photos()
    if name in photos:
        image = photos[name][None]
    elif name in TEXTURES:
        image = load_image(name, channels=3)
    else:
        patterns = load_gimp_patterns()
        key = name if name.endswith(".pat") else name + ".pat"
        if key not in patterns:
            photo_names, textures, pattern_names = picture_names()
            raise ValueError(f"unknown picture {name!r}: choose a photo ({', '.join(photo_names)}), a texture "
                             f"({', '.join(textures)}) or a GIMP pattern ({', '.join(pattern_names[:4])}, ... "
                             f"{len(pattern_names)} in all)")
        image = patterns[key][None]
        h, w = image.shape[2:]
        if min(h, w) < size:  # seamless: tile rather than blow it up
            image = np.pad(image, ((0, 0), (0, 0), (0, max(0, size - h)), (0, max(0, size - w))), mode="wrap")
            return np.ascontiguousarray(image[..., :size, :size], dtype=np.float32)
    h, w = image.shape[2:]
    scale = size / min(h, w)
    image = resize(image, (max(size, round(h * scale)), max(size, round(w * scale))))
    return np.clip(center_crop(image, size), -1, 1).astype(np.float32)


def ratios(losses):
    """content_kept and style_taken from the losses of the result and the two baselines."""
    result, content, style = losses["result"], losses["content_image"], losses["style_image"]
    return {"content_kept": 1 - result["content"] / style["content"],
            "style_taken": 1 - result["style"] / content["style"]}


def gatys_measure(network, images, content, style, device="cpu"):
    """Gatys' L_content and L_style of each named image against the content and the style image."""
    p, a = st.gatys_targets(network, mg.tensor(content, device=device), mg.tensor(style, device=device))
    with mg.no_grad():
        out = {}
        for name, image in images.items():
            losses = st.gatys_losses(network, mg.tensor(image, device=device), p, a)
            out[name] = {k: v.item() for k, v in losses.items()}
    return out


def adain_measure(encoder, images, content, style, device="cpu"):
    """AdaIN's losses of each named image: relu4_1's mean squared error to the content image's
    and the mean/std loss to the style image's relu1_1 ... relu4_1."""
    with mg.no_grad():
        target = encoder(mg.tensor(content, device=device), st.ADAIN_LAST)[st.ADAIN_LAST]
        style_features = encoder(mg.tensor(style, device=device), st.ADAIN_LAYERS)
        out = {}
        for name, image in images.items():
            features = encoder(mg.tensor(image, device=device), st.ADAIN_LAYERS)
            out[name] = {"content": mg.functional.mse_loss(features[st.ADAIN_LAST], target).item(),
                         "style": float(st.statistics_loss(features, style_features).item())}
    return out


def report(measure, network, images, content, style, device="cpu"):
    losses = measure(network, images, content, style, device)
    return {**losses, **ratios(losses)}


def run_gatys(args, content, style, settings):
    network = st.feature_network(args.features, last="relu5_1", width=args.width, seed=args.seed).to(args.device)
    p, a = st.gatys_targets(network, mg.tensor(content, device=args.device), mg.tensor(style, device=args.device))
    pixels = st.Pixels(st.initial_image(content, style, args.init, args.seed)).to(args.device)
    optimizer = optim.Adam(pixels.parameters(), lr=args.lr)
    run = Experiment("style_transfer", settings, {"pixels": pixels}, {"pixels": optimizer})
    run.maybe_resume()
    for _ in run.steps(args.steps, desc="gatys"):
        run.log(st.gatys_step(network, pixels, optimizer, p, a, args.content_weight, args.style_weight))
    result = pixels.image.detach().numpy()
    images = {"result": result, "content_image": content, "style_image": style}
    metrics = {"own": report(gatys_measure, network, images, content, style, args.device),
               "settings": {"init": args.init, "content_weight": args.content_weight,
                            "style_weight": args.style_weight, "content_layer": GATYS_CONTENT_LAYER,
                            "style_layers": list(GATYS_STYLE_LAYERS)}}
    save_image(np.concatenate([content, style, result]), os.path.join(run.out, "samples.png"), nrow=3, pad_value=1)
    save_npz(os.path.join(run.out, "samples.npz"), content=content, style=style, result=result)
    return run, images, metrics


def run_adain(args, content, style, settings):
    encoder = st.adain_encoder(args.features, width=args.width, seed=args.seed).to(args.device)
    decoder = st.Decoder(args.width).to(args.device)
    optimizer = optim.Adam(decoder.parameters(), lr=args.lr)
    data_rng = np.random.default_rng(args.seed)
    photos, _ = split_pictures(load_photos(), TEST_PHOTOS, every=None)  # held out: astronaut, coffee, flower
    patterns, _ = split_pictures(load_gimp_patterns())                  # held out: every 5th
    textures = [load_image(name, size=TEXTURE_SIDE, channels=3)[0] for name in TEXTURES]
    content_pool, style_pool = photos + patterns, patterns + textures
    run = Experiment("style_transfer", settings, {"decoder": decoder}, {"decoder": optimizer}, rngs={"data": data_rng})
    run.maybe_resume()
    for _ in run.steps(args.steps, desc="adain"):
        c = mg.tensor(random_crops(content_pool, args.batch_size, args.crop, data_rng), device=args.device)
        s = mg.tensor(random_crops(style_pool, args.batch_size, args.crop, data_rng), device=args.device)
        run.log(st.adain_train_step(encoder, decoder, optimizer, c, s, args.style_weight))
    c, s = mg.tensor(content, device=args.device), mg.tensor(style, device=args.device)
    sweep = np.concatenate([st.stylize(encoder, decoder, c, s, alpha).numpy() for alpha in ALPHAS])
    result = st.stylize(encoder, decoder, c, s, args.alpha).numpy()
    images = {"result": result, "content_image": content, "style_image": style}
    own = report(adain_measure, encoder, images, content, style, args.device)
    own["alpha_sweep"] = {f"{alpha:g}": v for alpha, v in zip(ALPHAS, adain_measure(
        encoder, {alpha: sweep[i:i + 1] for i, alpha in enumerate(ALPHAS)}, content, style, args.device).values())}
    metrics = {"own": own, "settings": {"alpha": args.alpha, "lambda": args.style_weight, "crop": args.crop,
                                        "batch_size": args.batch_size, "alphas": list(ALPHAS)}}
    save_image(np.concatenate([content, style, sweep]), os.path.join(run.out, "samples.png"),
               nrow=2 + len(ALPHAS), pad_value=1)
    save_npz(os.path.join(run.out, "samples.npz"), content=content, style=style, result=result, alpha_sweep=sweep,
             alphas=np.array(ALPHAS, np.float32))
    return run, images, metrics


def alpha_value(text):
    """--alpha: the content-style trade-off, a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the content-style trade-off alpha must lie in [0, 1]")
    return value


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], steps=None, batch_size=4)
    parser.add_argument("--method", choices=METHODS, default="gatys")
    parser.add_argument("--content", default="astronaut", help="a photo, texture or GIMP pattern by name")
    parser.add_argument("--style", default="Legacy/qube1", help="a photo, texture or GIMP pattern by name")
    parser.add_argument("--size", type=positive_int, default=128, help="content, style and result are size x size")
    parser.add_argument("--features", default=st.FEATURES,
                        help="VGG-19 weights: 'random' or a safetensors file with torchvision's keys")
    parser.add_argument("--width", type=positive_float, default=0.25, help="VGG-19's width factor, in (0, 1]")
    parser.add_argument("--lr", type=positive_float, default=None,
                        help=f"Adam's learning rate (default: {LR})")
    parser.add_argument("--style-weight", type=nonnegative_float, default=None,
                        help=f"Gatys' beta or AdaIN's lambda (default: {STYLE_WEIGHT})")
    parser.add_argument("--content-weight", type=nonnegative_float, default=st.GATYS_ALPHA, help="Gatys' alpha")
    parser.add_argument("--init", choices=st.GATYS_INITS, default="content", help="Gatys: the pixels' start")
    parser.add_argument("--crop", type=positive_int, default=64, help="AdaIN: the training crops' side")
    parser.add_argument("--alpha", type=alpha_value, default=1.0,
                        help="AdaIN: the content-style trade-off of result.png, in [0, 1]")
    args = parser.parse_args(argv)
    args.steps = args.steps or STEPS[args.method]
    args.lr = args.lr or LR[args.method]
    args.style_weight = STYLE_WEIGHT[args.method] if args.style_weight is None else args.style_weight
    if not 0 < args.width <= 1:
        parser.error(f"--width {args.width}: expected a number in (0, 1]")
    if args.method == "adain" and args.crop % 8:
        parser.error(f"--crop {args.crop}: AdaIN's encoder pools 3 times, so the crop must be a multiple of 8")
    if args.method == "adain" and args.size % 8:
        parser.error(f"--size {args.size}: AdaIN's encoder pools 3 times, so the size must be a multiple of 8")
    try:
        content, style = load_picture(args.content, args.size), load_picture(args.style, args.size)
    except ValueError as error:
        parser.error(str(error))

    mg.manual_seed(args.seed)
    settings = RunSettings.from_args(args)
    settings.data = args.method
    run, images, metrics = (run_gatys if args.method == "gatys" else run_adain)(args, content, style, settings)
    # with a weights file the judge is the same network (the seed only draws random weights)
    judge = st.feature_network(args.features, last="relu5_1", width=args.width, seed=args.seed + JUDGE_SEED)
    judge = judge.to(args.device)
    metrics["judge"] = report(gatys_measure, judge, images, content, style, args.device)
    save_image(images["result"], os.path.join(run.out, "result.png"))
    metrics = run.finish({"method": args.method, "content": args.content, "style": args.style, "size": args.size,
                          "features": args.features, "width": args.width, "lr": args.lr, **metrics})
    print({k: round(v, 3) for k, v in metrics["own"].items() if k in ("content_kept", "style_taken")},
          {"judge_" + k: round(v, 3) for k, v in metrics["judge"].items() if k in ("content_kept", "style_taken")})
    return metrics


if __name__ == "__main__":
    main()
