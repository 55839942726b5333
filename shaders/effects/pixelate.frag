#version 330 core
// @effect Pixelate: square blocks, each the colour at its centre.
// @param size 8 1 64 int | block size in output pixels
uniform sampler2D scene;
uniform vec2 resolution;
uniform float size;

in vec2 uv;
out vec4 frag;

void main() {
    float s = max(size, 1.0);
    vec2 cell = (floor(uv * resolution / s) + 0.5) * s;
    frag = vec4(texture(scene, cell / resolution).rgb, 1.0);
}
