"""StyleGAN2 generator, safe checkpoint loading, inference engine and export."""
