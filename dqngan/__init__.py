"""DQN-GAN Lab engine: a DCGAN for 28x28 images and a DQN agent that steers its latent space."""

__version__ = "0.1.0"
