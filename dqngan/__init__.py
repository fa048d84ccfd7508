"""DQN-GAN Lab engine: a DCGAN for 28x28 images and a DQN agent that steers its latent space."""

__version__ = "0.1.0"


def __getattr__(name: str):  # `from dqngan import Lab` without importing torch for `python -m dqngan --help`
    if name == "Lab":
        from .lab import Lab
        return Lab
    raise AttributeError(f"module 'dqngan' has no attribute {name!r}")
