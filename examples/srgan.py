"""Train SRResNet (MSE) and then SRGAN from it (Ledig et al. 2017): x4 super-resolution of colour crops.

    python examples/srgan.py                                  # SRResNet 1000 steps, then SRGAN-VGG54 1000 steps, CPU
    python examples/srgan.py --content vgg22                  # the paper's SRGAN-VGG22
    python examples/srgan.py --content mse                    # SRGAN-MSE: the adversarial term on the MSE
    python examples/srgan.py --vgg-weights vgg19.safetensors --vgg-width 1   # VGG-19 weights of your own
    python examples/srgan.py --device cuda --width 64 --blocks 16 --ndf 64 --dense 1024 --crop 96 \\
        --srresnet-steps 100000 --steps 100000              # the paper's networks and crops, GPU

The data (``minigan.data.superres``): HR crops (``--crop``, 32 by default) of the offline
colour pictures (``minigan.data.colour``: the photos of scikit-learn and scikit-image and
GIMP's patterns, split by whole picture); LR = HR shrunk by 4 with PIL's antialiased
bicubic (computed in float, clipped to [-1, 1]). The networks train on crops of the
training pictures; every number is on --num-samples crops of the held-out pictures, the
same crops whatever --seed.

The recipe (the paper's): --srresnet-steps of SRResNet on the pixel MSE, then SRGAN's G
starts from that SRResNet (the SRResNet is kept, and scored) and trains --steps
alternating one D step and one G step on l_content + 1e-3 l_gen. Adam, lr 1e-4 in the
paper; here 1e-3 for SRResNet and 1e-4 for SRGAN (--srresnet-lr, --lr), beta1 0.9.

Writes into --out: samples.npz (``input`` the LR crops, ``output`` SRGAN's,
``target`` the HR crops, ``bicubic`` and ``srresnet`` the two baselines; (N, 3, S, S)
float32 in [-1, 1]), samples_srresnet.npz (the same with SRResNet's as ``output``),
samples.png (rows of LR nearest-upsampled | bicubic | SRResNet | SRGAN | HR),
losses.png, checkpoint.safetensors, and metrics.json: ``table`` with PSNR and SSIM
(scikit-image, on [0, 1]; on the Y channel of YCbCr (BT.601) with a 4-pixel border
shaved, as the paper, and on RGB), edge energy (mean absolute difference of
neighbouring pixels) relative to the targets', and the multi-scale patch SWD of the
outputs' 7x7 patches against the targets' (``minigan.eval.patches``; lower: more like
the targets' texture) for bicubic, SRResNet and SRGAN.

Defaults and why they differ from the paper (B = 16 blocks of 64 channels, D from 64 to
512 channels with a dense 1024, 96x96 HR crops, batch 16, 10^6 + 2 x 10^5 steps, the
ImageNet VGG-19): 4 blocks of 32 channels, D from 16 to 128 channels with a dense 256,
32x32 HR crops, batch 16, 1000 + 1000 steps, a random VGG-19 narrowed to a quarter of
its widths (--vgg-width 0.25); a few minutes on a CPU core.
"""
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data.superres import SCALE, load_superres, sr_pairs, upsample
from minigan.eval.patches import patch_distance
from minigan.eval.translation import edge_energy
from minigan.models import srgan
from minigan.utils import save_image, save_npz
from minigan.utils.experiment import (Experiment, RunSettings, example_parser, nonnegative_int, positive_float,
                                    positive_int)

TEST_SEED = 20170525  # the held-out crops do not depend on --seed: every run is scored on the same ones
GRID_ROWS = 8
CALIBRATION_SEED, CALIBRATION_CROPS = 12750, 256  # --vgg-rescale auto


def crop_size(text):
    """--crop: a multiple of 16 (D's four stride-2 convs; LR = crop / 4)."""
    value = int(text)
    if value < 16 or value % 16:
        raise ValueError(text)
    return value


def vgg_width(text):
    """--vgg-width: a number in (0, 1]."""
    value = float(text)
    if not 0 < value <= 1:
        raise ValueError(text)
    return value


def rescale(text):
    """--vgg-rescale: 'auto' or a number > 0."""
    if text == "auto":
        return text
    value = float(text)
    if not 0 < value < float("inf"):
        raise ValueError(text)
    return value


def luminance(images):
    """Y of YCbCr (ITU-R BT.601, MATLAB's rgb2ycbcr) of [-1, 1] RGB, in [0, 1]."""
    rgb = (np.asarray(images, np.float64) + 1) / 2
    return (16 + 65.481 * rgb[:, 0] + 128.553 * rgb[:, 1] + 24.966 * rgb[:, 2]) / 255


def scores(outputs, targets, shave=SCALE):
    """PSNR and SSIM (on Y with ``shave`` border pixels cut, and on RGB), edge energy ratio, patch SWD."""
    from skimage.metrics import peak_signal_noise_ratio as psnr, structural_similarity as ssim
    cut = (slice(None), slice(shave, -shave), slice(shave, -shave))
    y_out, y_tgt = luminance(outputs)[cut], luminance(targets)[cut]
    rgb_out, rgb_tgt = (np.asarray(outputs, np.float64) + 1) / 2, (np.asarray(targets, np.float64) + 1) / 2
    energy = edge_energy(outputs)
    return {
        "psnr_y": float(np.mean([psnr(t, o, data_range=1) for o, t in zip(y_out, y_tgt)])),
        "ssim_y": float(np.mean([ssim(t, o, data_range=1) for o, t in zip(y_out, y_tgt)])),
        "psnr_rgb": float(np.mean([psnr(t, o, data_range=1) for o, t in zip(rgb_out, rgb_tgt)])),
        "ssim_rgb": float(np.mean([ssim(t, o, data_range=1, channel_axis=0) for o, t in zip(rgb_out, rgb_tgt)])),
        "edge_energy": energy, "edge_energy_ratio": energy / edge_energy(targets),
        "patch_swd": patch_distance(list(outputs), list(targets), levels=2)[0],
    }


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], data=["colour"], steps=1000, batch_size=16, lr=1e-4)
    parser.add_argument("--srresnet-steps", type=nonnegative_int, default=1000,
                        help="SRResNet's MSE steps before SRGAN starts from it (--steps: SRGAN's)")
    parser.add_argument("--srresnet-lr", type=positive_float, default=1e-3)
    parser.add_argument("--content", choices=srgan.CONTENTS, default="vgg54",
                        help="SRGAN's content loss: the pixel MSE or VGG-19's relu2_2 / relu5_4 features")
    parser.add_argument("--vgg-weights", default="random",
                        help="'random' or a safetensors file of VGG-19 weights with torchvision's keys")
    parser.add_argument("--vgg-width", type=vgg_width, default=0.25,
                        help="narrow a random VGG-19 by this factor (1 for a weights file)")
    parser.add_argument("--vgg-rescale", type=rescale, default="auto",
                        help="the factor on VGG's feature maps: a number (the paper's 1/12.75 = 0.0784 for "
                             "ImageNet's VGG-19) or 'auto': VGG loss = pixel MSE for bicubic upsampling")
    parser.add_argument("--adversarial-weight", type=positive_float, default=srgan.ADVERSARIAL_WEIGHT)
    parser.add_argument("--crop", type=crop_size, default=32, help="HR crop side, a multiple of 16 (LR: crop / 4)")
    parser.add_argument("--width", type=positive_int, default=32, help="G's channels (the paper: 64)")
    parser.add_argument("--blocks", type=nonnegative_int, default=4, help="G's residual blocks (the paper: 16)")
    parser.add_argument("--ndf", type=positive_int, default=16, help="D's first channels (the paper: 64)")
    parser.add_argument("--dense", type=positive_int, default=256, help="D's dense layer (the paper: 1024)")
    args = parser.parse_args(argv)
    if args.vgg_weights != "random" and args.content != "mse":
        if args.vgg_width != 1:
            parser.error(f"--vgg-weights {args.vgg_weights} holds VGG-19's full widths: pass --vgg-width 1")
        if not os.path.isfile(args.vgg_weights):
            parser.error(f"--vgg-weights: no file {args.vgg_weights!r}")
    args.out = args.out or os.path.join("runs", f"srgan-{args.content}")

    mg.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    train, test, described = load_superres()
    srresnet = srgan.SRResNet(3, args.width, args.blocks, SCALE).to(args.device)
    generator = srgan.SRResNet(3, args.width, args.blocks, SCALE).to(args.device)
    discriminator = srgan.Discriminator(3, args.crop, args.ndf, args.dense).to(args.device)
    content = srgan.ContentLoss(args.content, args.vgg_weights, args.vgg_width, seed=args.seed + 1).to(args.device)
    if content.vgg is not None:
        if args.vgg_rescale == "auto":  # on crops of their own, so the training batches stay those of any other run
            lr_cal, hr_cal = sr_pairs(train, CALIBRATION_CROPS, args.crop, CALIBRATION_SEED)
            content.rescale = srgan.calibrate_rescale(content, mg.tensor(upsample(lr_cal), device=args.device),
                                                      mg.tensor(hr_cal, device=args.device))
        else:
            content.rescale = args.vgg_rescale
    betas = (0.9, 0.999)
    modules = {"srresnet": srresnet, "generator": generator, "discriminator": discriminator}
    optimizers = {"srresnet": optim.Adam(srresnet.parameters(), lr=args.srresnet_lr, betas=betas),
                  "generator": optim.Adam(generator.parameters(), lr=args.lr, betas=betas),
                  "discriminator": optim.Adam(discriminator.parameters(), lr=args.lr, betas=betas)}
    run = Experiment("srgan", RunSettings.from_args(args), modules, optimizers, rngs={"data": data_rng})
    run.maybe_resume(scheduled_lr=True)  # two learning rates by phase, both from the command line
    for name, lr in (("srresnet", args.srresnet_lr), ("generator", args.lr), ("discriminator", args.lr)):
        for group in optimizers[name].param_groups:
            group["lr"] = lr

    total = args.srresnet_steps + args.steps
    for step in run.steps(total, desc=f"srresnet+srgan/{args.content}"):
        lr_images, hr_images = (mg.tensor(a, device=args.device)
                                for a in sr_pairs(train, args.batch_size, args.crop, data_rng))
        if step < args.srresnet_steps:
            run.log(srgan.srresnet_step(srresnet, optimizers["srresnet"], lr_images, hr_images))
            continue
        if step == args.srresnet_steps:  # SRGAN starts from the trained SRResNet
            generator.load_state_dict(srresnet.state_dict())
        losses = srgan.srgan_step(generator, discriminator, optimizers["generator"], optimizers["discriminator"],
                                  lr_images, hr_images, content, args.adversarial_weight)
        run.log({"srgan_" + k if k == "mse" else k: v for k, v in losses.items()})

    lr_test, hr_test = sr_pairs(test, args.num_samples, args.crop, TEST_SEED)
    outputs = {"bicubic": upsample(lr_test),
               "srresnet": srgan.super_resolve(srresnet, lr_test, 64, args.device),
               "srgan": srgan.super_resolve(generator, lr_test, 64, args.device)}
    table = {name: scores(out, hr_test) for name, out in outputs.items()}
    table["target"] = {"edge_energy": edge_energy(hr_test)}

    nearest = lr_test.repeat(SCALE, axis=2).repeat(SCALE, axis=3)
    columns = [nearest, outputs["bicubic"], outputs["srresnet"], outputs["srgan"], hr_test]
    tiles = np.stack([c[:GRID_ROWS] for c in columns], axis=1).reshape(-1, *hr_test.shape[1:])
    save_image(tiles.repeat(2, axis=2).repeat(2, axis=3), os.path.join(run.out, "samples.png"), nrow=len(columns),
               pad_value=1.0)
    save_npz(os.path.join(run.out, "samples.npz"), input=lr_test, output=outputs["srgan"], target=hr_test,
             bicubic=outputs["bicubic"], srresnet=outputs["srresnet"])
    save_npz(os.path.join(run.out, "samples_srresnet.npz"), input=lr_test, output=outputs["srresnet"],
             target=hr_test)
    settings = {"data": described, "content": args.content, "vgg_weights": args.vgg_weights,
                "vgg_width": args.vgg_width, "vgg_rescale": content.rescale if content.vgg is not None else None,
                "adversarial_weight": args.adversarial_weight, "crop": args.crop,
                "lr_size": args.crop // SCALE, "width": args.width, "blocks": args.blocks, "ndf": args.ndf,
                "dense": args.dense, "batch_size": args.batch_size, "srresnet_steps": args.srresnet_steps,
                "srgan_steps": args.steps, "srresnet_lr": args.srresnet_lr, "lr": args.lr,
                "test_crops": len(hr_test), "downsampling": "bicubic, antialiased (PIL's), clipped to [-1, 1]",
                "psnr_ssim": "skimage.metrics on [0, 1]; *_y: BT.601 Y, 4-pixel border shaved; *_rgb: whole crop"}
    metrics = run.finish({**settings, "table": table})
    for name in outputs:
        row = table[name]
        print(f"{name:9s} PSNR(Y) {row['psnr_y']:.2f} SSIM(Y) {row['ssim_y']:.3f} "
              f"edge energy {row['edge_energy_ratio']:.2f} of the targets' patch SWD {row['patch_swd']:.3f}")
    return metrics


if __name__ == "__main__":
    main()
