"""Recipe: ResNet-50 on ImageNet-1k, the Flax/big_vision protocol, for 8 accelerators.

Command:  python -m experiments.imagenet_resnet50 --workdir gs://BUCKET/imagenet_resnet50
          (data: ``imagenet2012`` prepared in TFDS under ``$TFDS_DATA_DIR``, e.g. a bucket; on
          several hosts: one process per host, see TPU_SETUP.md; ``--config.compute_dtype=
          float32`` for full precision)
Expected: 76-76.7% top-1. Flax's ImageNet example reports 76.72% for this protocol on 8 V100s
          (batch 512, 250k steps, 13.7 h: 8.2 min per epoch) and 76.47% with mixed precision
          (batch 2048, 5.0 h: 3.0 min per epoch); Haiku's example 76.2-76.7% at batch 256-4096.
          Protocol: batch 1024 (128 per device on 8), SGD with Nesterov momentum 0.9, learning
          rate 0.1 x batch / 256 = 0.4, 5 warm-up epochs then cosine to 0 over 100 epochs,
          weight decay 1e-4 on the kernels only (coupled, as an L2 term), bfloat16 compute
          with float32 parameters, random resized crop to 224 and horizontal flip on device,
          ImageNet mean/std normalisation.
          Differences from Flax's example: images are resized to 256x256 on the host (the
          aspect is not kept) before the on-device crop, and evaluation runs on that full
          256x256 image (the engine applies only normalisation at evaluation), not a 224
          centre crop: expect a few tenths of a point either way.
Runtime:  not run here (no accelerator, no ImageNet). Projected: about 3 min per epoch on 8
          V100s in bfloat16, faster on A100/H100 or a TPU v4-8; ``benchmarks/accelerator.py``
          measures images/s on the device at hand and projects the epoch time.
"""

from __future__ import annotations

from jaxvision import train

def get_config():
    config = train.default_config()
    config.dataset = "imagenet2012"
    config.eval_split = "validation"
    config.image_size = (256, 256)
    config.cache_data = False  # 1.28M images: stream them
    config.model = "resnet50"
    config.batch_size = 1024
    config.eval_batch_size = 1000
    config.num_epochs = 100
    config.compute_dtype = "bfloat16"
    config.optimizer.name = "momentum"
    config.optimizer.learning_rate = 0.1 * config.batch_size / 256
    config.optimizer.momentum = 0.9
    config.optimizer.nesterov = True
    config.optimizer.weight_decay = 1e-4
    config.optimizer.weight_decay_mode = "coupled"
    config.optimizer.decay_mask = "no_bias_norm"  # kernels only
    config.optimizer.schedule = "cosine"
    config.optimizer.warmup_steps = 5 * 1_281_167 // config.batch_size  # 5 epochs
    config.augment.ops = ("random_resized_crop", "flip", "normalize")  # ImageNet mean/std
    config.augment.random_resized_crop = {"size": (224, 224)}
    config.log_every_steps = 100
    return config


def main(config, workdir: str) -> dict:
    return train.train_and_evaluate(config, workdir)


if __name__ == "__main__":
    from jaxvision import cli

    cli.run(get_config, main, name="imagenet_resnet50")
