"""Tiny fixtures in the real on-disk layouts of the diffusion experiments: CUB-200-2011, the
iWildCam subset, and generated pools in ALIA's layout. Images are flat colours (one per class)
plus noise, so a small network learns them in a few steps and a pool can hold images whose
label is wrong by construction."""
from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

PALETTE = [(220, 40, 40), (40, 200, 60), (50, 70, 230), (230, 210, 40), (200, 60, 220), (40, 210, 220), (120, 120, 120)]


def class_image(label: int, rng: np.random.Generator, size: int = 24) -> Image.Image:
    pixels = np.array(PALETTE[label], dtype=float) + rng.normal(0, 25, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_cub(root: Path, classes: int = 3, train_per_class: int = 10, test_per_class: int = 3, seed: int = 0) -> Path:
    """{root}/CUB_200_2011 with its five metadata files; train and test images interleaved by id."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "CUB_200_2011"
    folders = [f"{c + 1:03d}.Class_{chr(97 + c)}_bird" for c in range(classes)]
    images, labels, split = [], [], []
    image_id = 0
    for c, folder in enumerate(folders):
        for k in range(train_per_class + test_per_class):
            image_id += 1
            relative = f"{folder}/{folder.split('.')[1]}_{k:04d}_{image_id}.jpg"
            (base / "images" / folder).mkdir(parents=True, exist_ok=True)
            class_image(c, rng).save(base / "images" / relative, quality=95)
            images.append(f"{image_id} {relative}")
            labels.append(f"{image_id} {c + 1}")
            is_test = k % 4 == 3 and k // 4 < test_per_class  # every 4th image, until the class has its test images
            split.append(f"{image_id} {0 if is_test else 1}")
    (base / "images.txt").write_text("\n".join(images) + "\n")
    (base / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (base / "classes.txt").write_text("\n".join(f"{c + 1} {f}" for c, f in enumerate(folders)) + "\n")
    (base / "train_test_split.txt").write_text("\n".join(split) + "\n")
    return Path(root)


def cub_split_ids(root: Path) -> list[int]:
    return [int(line.split()[1]) for line in (Path(root) / "CUB_200_2011/train_test_split.txt").read_text().splitlines()]


def make_iwildcam(root: Path, lists_out: Path, per_class: dict[str, int], seed: int = 0) -> Path:
    """Rows of the shipped ALIA lists (real file names and y), `per_class` rows per class and split,
    written in the shipped format, with images under {root}/iwildcam_v2.0/train/."""
    from saflex_cli.data.iwildcam import CLASS_YS, LISTS, file_list
    rng = np.random.default_rng(seed)
    folder = Path(root) / "iwildcam_v2.0" / "train"
    folder.mkdir(parents=True, exist_ok=True)
    lists_out.mkdir(parents=True, exist_ok=True)
    for split, name in LISTS.items():
        frame = file_list(split)
        rows = frame.groupby("y", sort=False).head(per_class[split]).sort_index()
        rows.to_csv(lists_out / f"iwildcam_alia_{name}_subset.csv", index=False)
        for filename, y in zip(rows.filename, rows.y):
            # real camera frames are wide (1920 x 1080): keep the aspect so the crop matters
            class_image(CLASS_YS.index(y), rng, size=24).resize((48, 27)).save(folder / filename, quality=95)
    return Path(root)


def write_edits(pool: Path, prompt: str, setting: str, class_folder: str, source: int, colour_label: int,
                edits: int = 2, seed: int = 0) -> None:
    """{pool}/{prompt}/{setting}/{class_folder}/{source}-{j}.png showing colour `colour_label`."""
    rng = np.random.default_rng([seed, source, zlib.crc32(prompt.encode())])
    folder = pool / prompt / setting / class_folder
    folder.mkdir(parents=True, exist_ok=True)
    for j in range(edits):
        class_image(colour_label, rng).save(folder / f"{source}-{j}.png")


def write_txt2img(pool: Path, prompt: str, class_folder: str, colour_label: int, count: int, seed: int = 0) -> None:
    rng = np.random.default_rng([seed, colour_label, count])
    folder = pool / prompt / class_folder
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        class_image(colour_label, rng).save(folder / f"{k}.png")


def write_preview_grid(folder: Path, name: str = "0.png") -> None:
    (folder / "samples").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 16)).save(folder / "samples" / name)


def tiny_tokenizer_files(folder: Path) -> Path:
    """A byte-level CLIP vocabulary without merges: every byte is a token (vocab.json + merges.txt)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes, extra = printable[:], 0
    for byte in range(256):
        if byte not in printable:
            codes.append(256 + extra)
            extra += 1
    symbols = [chr(c) for c in codes]
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"])}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return folder


def tiny_pipeline(folder: Path, instruct: bool = False) -> Path:
    """A random Stable Diffusion (or InstructPix2Pix) pipeline saved as a local model folder,
    built offline from configs as diffusers' fast tests do (32 px output)."""
    import torch
    from diffusers import (AutoencoderKL, EulerAncestralDiscreteScheduler, PNDMScheduler, StableDiffusionInstructPix2PixPipeline,
                           StableDiffusionPipeline, UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(str(tiny_tokenizer_files(folder.parent / "tokenizer-files")), model_max_length=77)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=8 if instruct else 4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
                                norm_num_groups=4, attention_head_dim=4)
    vae = AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, sample_size=32)
    size = len(tokenizer)
    text_encoder = CLIPTextModel(CLIPTextConfig(bos_token_id=size - 2, eos_token_id=size - 1, pad_token_id=size - 1, vocab_size=size,
                                                hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1,
                                                projection_dim=16))
    kind = StableDiffusionInstructPix2PixPipeline if instruct else StableDiffusionPipeline
    scheduler = EulerAncestralDiscreteScheduler() if instruct else PNDMScheduler(skip_prk_steps=True, steps_offset=1)
    kind(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler, safety_checker=None,
         feature_extractor=None, requires_safety_checker=False).save_pretrained(str(folder))
    return folder
