"""vj: a real-time instrument for live club visuals (audio → StyleGAN2 → OpenGL)."""

__version__ = "0.1.0"
