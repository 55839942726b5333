"""OpenGL compositor, window and offscreen outputs, video recording."""
